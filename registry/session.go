package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

// A session is the exclusive lock with the registry file and the lease
// file open under it: every write goes through one (docs/design.md, "Two
// files" and "Lock protocol"). Most last one operation; [Held] keeps one
// open across batches.

// leaseFile returns the lease file's path and whether its commits may skip
// the disk sync (only where the file is named after the boot).
func (r *Registry) leaseFile() (path string, noSync bool) {
	r.leasesOnce.Do(func() {
		r.leasePath = r.path + ".leases"
		if boot := procinfo.BootID(); boot != "" {
			r.leasePath += "-" + boot
			r.leaseNoSync = true
		}
	})
	return r.leasePath, r.leaseNoSync
}

// LeasePath returns the path of the lease file for this boot.
func (r *Registry) LeasePath() string {
	p, _ := r.leaseFile()
	return p
}

// mainMode says how a session opens the registry file.
type mainMode int

const (
	mainReadWrite mainMode = iota
	mainReadOnly           // cheaper: no freelist to load (created read-write if missing)
	mainSkip               // not at all: session.main is nil
)

// plan says what a session opens.
type plan struct {
	main mainMode
	// leases creates the lease file when it is missing; without it a
	// missing lease file is left missing (session.leases is nil: no leases).
	leases bool
}

// session is the exclusive lock and the files a plan asked for.
type session struct {
	lock   *lock.Lock
	main   *store.DB // nil with mainSkip
	leases *store.DB // nil when there is no lease file and none was wanted
}

// openSession takes the exclusive lock, or uses held (which it then owns:
// it is released on failure and by close), and opens the files p names.
func (r *Registry) openSession(ctx context.Context, held *lock.Lock, p plan) (*session, error) {
	s := &session{lock: held}
	if s.lock == nil {
		if err := r.mkdirAll(); err != nil {
			return nil, err
		}
		var err error
		if s.lock, err = r.lock(ctx, lock.Exclusive); err != nil {
			return nil, err
		}
	}
	var err error
	if p.main != mainSkip {
		s.main, err = store.Open(r.path, store.Options{ReadOnly: p.main == mainReadOnly, Perm: r.filePerm()})
		if errors.Is(err, fs.ErrNotExist) && p.main == mainReadOnly {
			s.main, err = store.Open(r.path, store.Options{Perm: r.filePerm()}) // first use: create it
		}
	}
	if err == nil {
		s.leases, err = r.openLeases(p.leases)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close closes the files and lets go of the lock. A failure to close
// (unmap) a file whose work has committed does not undo that work, so
// callers that have committed ignore it.
func (s *session) close() error {
	var errs []error
	for _, db := range []*store.DB{s.main, s.leases} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	errs = append(errs, s.lock.Unlock())
	return errors.Join(errs...)
}

// withSession runs fn in a session (see openSession); fn's error is the
// result.
func (r *Registry) withSession(ctx context.Context, held *lock.Lock, p plan, fn func(*session) error) error {
	s, err := r.openSession(ctx, held, p)
	if err != nil {
		return err
	}
	defer s.close()
	return fn(s)
}

// mkdirAll makes the registry's directory.
func (r *Registry) mkdirAll() error {
	if err := os.MkdirAll(filepath.Dir(r.path), r.dirPerm()); err != nil {
		return fmt.Errorf("open registry %s: %w", r.path, err)
	}
	return nil
}

// openLeases opens the lease file read-write, creating it when create is
// set (and removing lease files of earlier boots); a missing file without
// create is (nil, nil): no leases.
func (r *Registry) openLeases(create bool) (*store.DB, error) {
	path, noSync := r.leaseFile()
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		for _, old := range r.oldLeaseFiles() {
			os.Remove(old)
		}
	}
	return store.Open(path, store.Options{NoSync: noSync, Perm: r.filePerm()})
}

// oldLeaseFiles lists the lease files of earlier boots: their owners are
// all gone.
func (r *Registry) oldLeaseFiles() []string {
	current, _ := r.leaseFile()
	dir, prefix := filepath.Dir(r.path), filepath.Base(r.path)+".leases"
	entries, _ := os.ReadDir(dir) // not filepath.Glob: the path may hold [ ] * ?
	var old []string
	for _, e := range entries {
		if f := filepath.Join(dir, e.Name()); strings.HasPrefix(e.Name(), prefix) && f != current {
			old = append(old, f)
		}
	}
	return old
}

// txs is a transaction on each open file; leases is nil when there is no
// lease file. It notes which files it changed, so that commit syncs only
// those: a commit of the registry costs two disk syncs even when it
// changes nothing.
type txs struct {
	main, leases           *store.Tx
	mainDirty, leasesDirty bool
	lock                   *lock.Lock // checked before a commit
}

// begin starts a transaction on each open file, read-write where asked.
func (s *session) begin(mainWritable, leasesWritable bool) (*txs, error) {
	t := &txs{lock: s.lock}
	var err error
	if s.main != nil {
		if t.main, err = s.main.Begin(mainWritable); err != nil {
			return nil, err
		}
	}
	if s.leases != nil {
		if t.leases, err = s.leases.Begin(leasesWritable); err != nil {
			t.rollback()
			return nil, err
		}
	}
	return t, nil
}

// portFree returns an [ErrPortTaken] error naming the holder when port
// belongs to a stable id or a lease: the check of Bind and Move.
func (t *txs) portFree(id string, port int) error {
	for _, tx := range []*store.Tx{t.main, t.leases} {
		if tx == nil {
			continue
		}
		if owner, held := tx.PortOwner(port); held {
			return &PortError{ID: id, Port: port, Owner: owner, Err: ErrPortTaken}
		}
	}
	return nil
}

// put and del change one file's transaction and note that it changed.
func (t *txs) put(tx *store.Tx, e store.Entry) error {
	t.touch(tx)
	return tx.Put(e)
}

func (t *txs) del(tx *store.Tx, id string) (store.Entry, bool, error) {
	t.touch(tx)
	return tx.Delete(id)
}

func (t *txs) touch(tx *store.Tx) {
	t.mainDirty = t.mainDirty || tx == t.main
	t.leasesDirty = t.leasesDirty || tx == t.leases
}

// commit commits what changed, the registry first, then the lease file:
// if the second fails, what the first kept is stable ids, which a retry
// finds and keeps, while leases, which a retry would make again, are not
// kept. What did not change is rolled back.
func (t *txs) commit() error {
	if t.mainDirty || t.leasesDirty {
		// Still the lock everyone else takes? (See lock.Lock.Check.)
		if err := t.lock.Check(); err != nil {
			t.rollback()
			return err
		}
	}
	for _, f := range []struct {
		tx    *store.Tx
		dirty bool
	}{{t.main, t.mainDirty}, {t.leases, t.leasesDirty}} {
		if f.tx == nil || !f.tx.Writable() || !f.dirty {
			continue
		}
		if err := f.tx.Commit(); err != nil {
			t.rollback()
			return err
		}
	}
	t.rollback() // what is left: read-only or unchanged
	return nil
}

// rollback ends what is still open; it is safe after commit.
func (t *txs) rollback() {
	for _, tx := range []*store.Tx{t.leases, t.main} {
		if tx != nil {
			tx.Rollback()
		}
	}
}

// stablePortsCache keeps the ports of the registry file between lease
// batches: a batch of leases only reads the registry file, and reading its
// header to see that it has not changed costs a fraction of opening it.
type stablePortsCache struct {
	mu    sync.Mutex
	gen   store.Generation
	ports map[int]bool
}

// stablePorts returns the registry file's ports when they are known for its
// current state. Call under the exclusive lock.
func (r *Registry) stablePorts() map[int]bool {
	gen, err := store.ReadGeneration(r.path)
	if err != nil {
		return nil
	}
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	if !r.cache.gen.Same(gen) {
		return nil
	}
	return r.cache.ports
}

// readStablePorts reads and keeps the registry file's ports. Call under
// the lock, with main open.
func (r *Registry) readStablePorts(main *store.DB) (map[int]bool, error) {
	gen, err := store.ReadGeneration(r.path)
	if err != nil {
		return nil, err
	}
	ports := map[int]bool{}
	err = main.View(func(tx *store.Tx) error {
		return tx.ForEachPort(func(port int) error {
			ports[port] = true
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	r.cache.mu.Lock()
	r.cache.gen, r.cache.ports = gen, ports
	r.cache.mu.Unlock()
	return ports, nil
}

// viewLeases runs fn on the lease file under the shared lock the caller
// holds; no file means no leases.
func (r *Registry) viewLeases(fn func(*store.Tx) error) error {
	path, _ := r.leaseFile()
	err := withStore(path, store.Options{ReadOnly: true}, func(db *store.DB) error { return db.View(fn) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// withStore opens the bbolt file at path, runs fn on it and closes it. Call
// it under the lock. A failure to close is reported only when fn succeeded.
func withStore(path string, opts store.Options, fn func(*store.DB) error) error {
	db, err := store.Open(path, opts)
	if err != nil {
		return err
	}
	err = fn(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Held is the registry held open for a run of lease batches: the exclusive
// lock taken and both files open, so that requests arriving one after
// another skip taking the lock and opening and closing the files each
// time. Everyone else waits while it is held (their queued requests are
// carried out by its batches), so hold it briefly: a port server holds it
// for the requests that arrive within a millisecond or so of each other.
// A Held is not safe for concurrent use; Close it to let go.
type Held struct {
	r *Registry
	s *session
}

// Hold takes the exclusive lock, waiting as [Registry.Lease] would, and
// opens both files.
func (r *Registry) Hold(ctx context.Context) (*Held, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	s, err := r.openSession(ctx, nil, plan{main: mainReadWrite, leases: true})
	if err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	return &Held{r: r, s: s}, nil
}

// LeaseEach is [Registry.LeaseEach] inside the held registry: one port for
// each of opts, in one transaction, together with any queued requests.
func (h *Held) LeaseEach(opts []LeaseOptions) ([]Assignment, []error) {
	return h.r.leaseEach(opts, func(qs []request) ([]job, error) {
		jobs := h.r.ownJobs(qs)
		if err := h.r.carryOut(h.s, jobs, nil); err != nil {
			return nil, err
		}
		return jobs[:len(qs)], nil
	})
}

// Close closes the files and lets go of the lock.
func (h *Held) Close() error { return h.s.close() }
