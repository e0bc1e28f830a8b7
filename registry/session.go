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

// Two files.
//
// Stable assignments live in the registry file, and every commit to it is
// synced to disk: an acknowledged assignment survives a power loss. Leases
// live in a second bbolt file beside it, "<path>.leases-<boot id>", whose
// commits are not synced. A lease is only good while its owner process
// runs, and no process survives the machine going down, so a lease lost in
// a crash of the machine loses nothing; a crash of a process (portfor's
// own included) loses nothing either, because the kernel keeps what was
// written. The file's name carries the boot id, so after a reboot a fresh,
// empty lease file is used and the old one, possibly torn by the crash, is
// removed unread. Where the OS gives no boot id, the lease file is
// "<path>.leases" and its commits are synced like the registry's.
//
// Both files are only ever opened under the sidecar lock, so a port is
// checked against both before it is given out.

// leaseStore returns the lease file's path and whether its commits may skip
// the disk sync.
func (r *Registry) leaseStore() (path string, noSync bool) {
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
	p, _ := r.leaseStore()
	return p
}

// session is both files, open under the lock.
type session struct {
	main   *store.DB
	leases *store.DB // nil when there is no lease file and none was wanted
}

func (s *session) close() error {
	var err error
	if s.main != nil {
		err = s.main.Close()
	}
	if s.leases != nil {
		if lerr := s.leases.Close(); err == nil {
			err = lerr
		}
	}
	return err
}

// openLeases opens the lease file read-write, creating it when create is
// set (and removing lease files of earlier boots); a missing file without
// create is (nil, nil): no leases.
func (r *Registry) openLeases(create bool) (*store.DB, error) {
	path, noSync := r.leaseStore()
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		r.removeOldLeaseFiles(path)
	}
	return store.Open(path, store.Options{NoSync: noSync, Perm: r.filePerm()})
}

// removeOldLeaseFiles removes lease files of earlier boots: their owners
// are all gone.
func (r *Registry) removeOldLeaseFiles(current string) {
	dir, prefix := filepath.Dir(r.path), filepath.Base(r.path)+".leases"
	entries, _ := os.ReadDir(dir) // not filepath.Glob: the path may hold [ ] * ?
	for _, e := range entries {
		if f := filepath.Join(dir, e.Name()); strings.HasPrefix(e.Name(), prefix) && f != current {
			os.Remove(f)
		}
	}
}

// withSession opens the registry read-write (creating it when missing) and
// the lease file (creating it when wantLeases), under the exclusive lock,
// and runs fn. A lock already taken may be passed in held; it is released.
func (r *Registry) withSession(ctx context.Context, held *lock.Lock, wantLeases bool, fn func(*session) error) error {
	return r.withSessionMode(ctx, held, mainReadWrite, wantLeases, fn)
}

// mainMode says how a session opens the registry file.
type mainMode int

const (
	mainReadWrite mainMode = iota
	mainReadOnly           // cheaper: no freelist to load (created read-write if missing)
	mainSkip               // not at all: session.main is nil
)

// withSessionMode is withSession with the registry file opened as mode says.
func (r *Registry) withSessionMode(ctx context.Context, held *lock.Lock, mode mainMode, wantLeases bool, fn func(*session) error) error {
	l := held
	if l == nil {
		if err := os.MkdirAll(filepath.Dir(r.path), r.dirPerm()); err != nil {
			return fmt.Errorf("open registry %s: %w", r.path, err)
		}
		var err error
		if l, err = r.lock(ctx, lock.Exclusive); err != nil {
			return err
		}
	}
	defer l.Unlock()
	s := &session{}
	if mode != mainSkip {
		var err error
		s.main, err = store.Open(r.path, store.Options{ReadOnly: mode == mainReadOnly, Perm: r.filePerm()})
		if errors.Is(err, fs.ErrNotExist) && mode == mainReadOnly {
			s.main, err = store.Open(r.path, store.Options{Perm: r.filePerm()}) // first use: create it
		}
		if err != nil {
			return err
		}
	}
	var err error
	if s.leases, err = r.openLeases(wantLeases); err != nil {
		s.close()
		return err
	}
	defer func() {
		// After fn succeeded its work is committed: a failure to close
		// (unmap) must not report it as failed.
		_ = s.close()
	}()
	return fn(s)
}

// txs is a transaction on each file; leases is nil when there is no file.
type txs struct {
	main, leases *store.Tx
}

// begin starts a transaction on each open file, read-write where asked.
func (s *session) begin(mainWritable, leasesWritable bool) (*txs, error) {
	t := &txs{}
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

// commit commits the registry first, then the lease file: if the second
// fails, what the first kept is stable ids, which a retry finds and keeps,
// while leases, which a retry would make again, are not kept.
func (t *txs) commit() error {
	if t.main != nil {
		if err := t.main.Commit(); err != nil {
			t.rollback()
			return err
		}
	}
	if t.leases != nil {
		return t.leases.Commit()
	}
	return nil
}

func (t *txs) rollback() {
	for _, tx := range []*store.Tx{t.leases, t.main} {
		if tx != nil {
			tx.Rollback()
		}
	}
}

// The ports the registry file holds, kept between lease batches: a batch of
// leases only reads the registry file, and reading its header to see that
// it has not changed costs a fraction of opening it.
type mainPortsCache struct {
	mu    sync.Mutex
	gen   store.Generation
	ports map[int]bool
}

// mainPorts returns the registry file's ports when they are known for its
// current state. Call under the exclusive lock.
func (r *Registry) mainPorts() map[int]bool {
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

// rememberMainPorts reads and keeps the registry file's ports. Call under
// the lock, with main open.
func (r *Registry) rememberMainPorts(main *store.DB) (map[int]bool, error) {
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
	path, _ := r.leaseStore()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = db.View(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
