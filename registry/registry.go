package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry/internal/queue"
	"github.com/portfor/portfor/store"
)

// DefaultLockTimeout is how long an operation waits for the registry's lock
// when [Options.LockTimeout] is zero and the context has no earlier deadline.
const DefaultLockTimeout = 10 * time.Second

// Options configure a [Registry]. The zero value is ready to use.
type Options struct {
	// LockTimeout bounds each wait for the registry's lock. Zero means
	// DefaultLockTimeout; a negative value waits as long as the context allows.
	LockTimeout time.Duration
	// Now returns the current time, for timestamps; nil means time.Now.
	Now func() time.Time
	// Scope, if not empty, is the scope of the names this handle reads and
	// assigns: "web" in scope "feature-x" is not "web" in another scope nor
	// the unscoped "web". See [ValidateScope]; [List] shows every scope.
	Scope string
	// ScopeDir, if not empty, is recorded as the directory of the names
	// this handle creates, in place of the working directory: the
	// directory whose removal ends the scope (see [Registry.Prune]). For a
	// git worktree's scope, its [Worktree].Admin.
	ScopeDir string
}

// Kind says how a port is held: a stable assignment or a lease.
type Kind = store.Kind

const (
	// Stable is a name→port assignment that lasts until released.
	Stable = store.Stable
	// Lease is a port held for an owner process.
	Lease = store.Lease
)

// Assignment is one port held in the registry.
type Assignment struct {
	ID      string    // the name the port is held under
	Scope   string    // the name's scope, "" for an unscoped name or a lease
	Port    int       // the port
	Kind    Kind      // Stable or Lease
	Created time.Time // when it was assigned
	Updated time.Time // when it last changed
	Dir     string    // working directory of the process that asked, if known
	// OwnerPID, OwnerStart and OwnerNS identify a lease's owner process
	// (zero for stable assignments): its pid, as the /proc of the process
	// that made the lease numbers it, the OS's process start time, and the
	// pid namespace the pid belongs to (0 where unknown).
	OwnerPID   int
	OwnerStart uint64
	OwnerNS    uint64
	Command    string // the owner's command line, if known
}

// Key is the assignment's name as people type it and the registry stores
// it: SCOPE:NAME for a scoped name, else the name (or a lease's id).
func (a Assignment) Key() string { return scopedKey(a.Scope, a.ID) }

// found turns what a Get or Delete returned into the assignment, or an
// error wrapping ErrNotFound when there was none.
func found(e store.Entry, ok bool, err error) (Assignment, error) {
	if err != nil {
		return Assignment{}, err
	}
	if !ok {
		return Assignment{}, ErrNotFound
	}
	return fromEntry(e), nil
}

func fromEntry(e store.Entry) Assignment {
	scope, id := splitKey(e.ID)
	return Assignment{ID: id, Scope: scope, Port: e.Port, Kind: e.Kind, Created: e.Created, Updated: e.Updated,
		Dir: e.Dir, OwnerPID: e.OwnerPID, OwnerStart: e.OwnerStart, OwnerNS: e.OwnerNS, Command: e.Command}
}

// Registry is a handle on a registry file. It holds no file open between
// calls, so any number of processes and handles may share one file. Its
// methods are safe for concurrent use.
type Registry struct {
	path     string
	lockPath string
	opts     Options

	rangesOnce sync.Once
	ephemeral  portrange.Range
	reserved   portrange.List

	leasesOnce  sync.Once
	leasePath   string
	leaseNoSync bool

	cache stablePortsCache
	known knownPorts // see Registry.listenKnown
	queue *queue.Queue

	shared bool // the directory is group-writable: files 0660, directories 0770

	// direct turns the cross-process queue off: a caller that finds the
	// lock busy waits for it and carries out its own request alone. Only the
	// benchmarks set it (export_test.go), to show what the queue buys.
	direct bool
}

// Open returns a handle on the registry at path (see [DefaultPath]). It
// creates nothing: the file and its directory are created by the first
// operation that writes. It refuses, with an [*UnsafePathError], a path
// another user could control (see checkPath in safety.go).
func Open(path string, opts Options) (*Registry, error) {
	if opts.Scope != "" {
		if err := ValidateScope(opts.Scope); err != nil {
			return nil, fmt.Errorf("open registry %s: %w", path, err)
		}
	}
	if path == "" {
		return nil, errors.New("open registry: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if abs, err = checkPath(abs); err != nil {
		return nil, err
	}
	if _, err := checkPath(abs + ".lock"); err != nil {
		return nil, err
	}
	r := &Registry{path: abs, lockPath: abs + ".lock", opts: opts}
	if _, err := checkPath(r.LeasePath()); err != nil {
		return nil, err
	}
	r.shared = r.sharing()
	group := -1
	if r.shared {
		group = r.sharedGroup()
	}
	r.queue = queue.New(queue.Config{Dir: abs + ".pending", FilePerm: r.filePerm(), DirPerm: r.dirPerm(), Group: group})
	return r, nil
}

// usable reports whether r came from Open.
func (r *Registry) usable() error {
	if r == nil || r.path == "" {
		return errNotOpen
	}
	return nil
}

// Path returns the registry file's absolute path.
func (r *Registry) Path() string { return r.path }

// LockPath returns the path of the sidecar lock file, "<Path>.lock".
func (r *Registry) LockPath() string { return r.lockPath }

func (r *Registry) lock(ctx context.Context, mode lock.Mode) (*lock.Lock, error) {
	// Try first: a free lock needs no timer, nor anything from ctx.
	if l, ok, err := r.tryLock(mode); ok || err != nil {
		return l, err
	}
	ctx, cancel := r.lockContext(ctx)
	defer cancel()
	return lock.Acquire(ctx, r.lockPath, mode, lock.Perm(r.filePerm()))
}

// errNoFile means the registry file does not exist yet: an empty registry.
var errNoFile = errors.New("no registry file")

// view runs fn in a read transaction under the shared lock. It returns
// errNoFile, without locking, when the registry does not exist yet.
func (r *Registry) view(ctx context.Context, fn func(*store.Tx) error) error {
	_, err := r.viewMaybe(ctx, false, fn)
	return err
}

// viewMaybe is view; with tryOnly it does not wait for a busy lock and
// reports ran == false instead.
func (r *Registry) viewMaybe(ctx context.Context, tryOnly bool, fn func(*store.Tx) error) (ran bool, err error) {
	l, ran, err := r.sharedLock(ctx, tryOnly)
	if l == nil {
		return ran, err
	}
	defer l.Unlock()
	err = withStore(r.path, store.Options{ReadOnly: true}, func(db *store.DB) error { return db.View(fn) })
	if errors.Is(err, fs.ErrNotExist) {
		return true, errNoFile
	}
	return true, err
}

// peekMaybe is viewMaybe for a transaction that only gets id: it reads
// the few pages on the way to id (store.Peek) instead of opening the
// file, which maps it and unmaps it again, for more than the lookup costs.
func (r *Registry) peekMaybe(ctx context.Context, tryOnly bool, id string) (e store.Entry, ok, ran bool, err error) {
	l, ran, err := r.sharedLock(ctx, tryOnly)
	if l == nil {
		return store.Entry{}, false, ran, err
	}
	defer l.Unlock()
	e, ok, _, err = store.Peek(r.path, id)
	if errors.Is(err, fs.ErrNotExist) {
		return store.Entry{}, false, true, errNoFile
	}
	return e, ok, true, err
}

// sharedLock takes the shared lock for viewMaybe and peekMaybe: nil with
// ran == false when tryOnly and the lock is busy; nil with errNoFile when
// there is no registry.
func (r *Registry) sharedLock(ctx context.Context, tryOnly bool) (l *lock.Lock, ran bool, err error) {
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		return nil, true, errNoFile
	}
	if tryOnly {
		var ok bool
		if l, ok, err = r.tryLock(lock.Shared); err == nil && !ok {
			return nil, false, nil
		}
	} else {
		l, err = r.lock(ctx, lock.Shared)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, errNoFile // the directory is gone too
	}
	if err != nil {
		return nil, true, err
	}
	return l, true, nil
}

// update runs fn in a write transaction on the registry file (not the
// lease file) under the exclusive lock, creating the registry when missing.
// The change is on disk when update returns nil.
func (r *Registry) update(ctx context.Context, fn func(*store.Tx) error) error {
	return r.withSession(ctx, nil, plan{}, func(s *session) error { return s.main.Update(fn) })
}

// ForwardPort returns the port assigned to id, assigning one if id is new.
//
// An id that is already assigned gets its port, whatever suggested says. A
// new id gets suggested when it is free on the host and assigned to no other
// id, even inside the OS's ephemeral range or on an IANA-registered port;
// otherwise the nearest port above suggested (wrapping around to 1024) that
// is 1024-65535, outside the ephemeral range and ip_local_reserved_ports,
// not the usual port of a common local service (PostgreSQL's 5432, Vite's
// 5173...: a short list in common.go), assigned to no id and free (see
// [CanBind]): asked for 3000, taken, an id gets 3001. With suggested == 0
// the search starts at a port derived from id, so one name tends to get one
// port on every machine, and skips IANA-registered ports as well.
//
// The probe and the commit happen under one exclusive lock, so concurrent
// callers, in any process, never get one port for two ids or two ports for
// one id. Nothing guarantees that the port stays free on the host: another
// program can bind it at any time.
func (r *Registry) ForwardPort(ctx context.Context, id string, suggested int) (int, error) {
	if err := r.usable(); err != nil {
		return 0, fmt.Errorf("forward %q: %w", id, err)
	}
	if err := ValidateID(id); err != nil {
		return 0, err
	}
	id = r.key(id)
	if suggested != 0 {
		if err := validatePort(id, suggested); err != nil {
			return 0, err
		}
	}
	// A known id is answered under the shared lock, so lookups never queue
	// behind each other. When a writer holds the lock, don't queue twice
	// (once shared, then exclusive for a new id): go straight to the
	// exclusive path, which looks the id up again anyway.
	var port int
	e, ok, _, err := r.peekMaybe(ctx, true, id)
	if ok {
		port = e.Port
	}
	if err != nil && !errors.Is(err, errNoFile) {
		return 0, fmt.Errorf("forward %q: %w", id, err)
	}
	if port != 0 {
		return port, nil
	}
	ports, err := r.submit(ctx, request{Kind: store.Stable, ID: id, Suggested: suggested})
	if err != nil {
		return 0, fmt.Errorf("forward %q: %w", id, err)
	}
	return ports[0], nil
}

// Bind assigns exactly port to id, like port-for's --bind. It fails with
// [ErrPortTaken] when the port belongs to another id and with [ErrIDBound]
// when id already holds another port; binding an id to the port it already
// holds succeeds. Bind does not probe the host: it records a port that a
// service may already be using.
func (r *Registry) Bind(ctx context.Context, id string, port int) error {
	if err := r.usable(); err != nil {
		return fmt.Errorf("bind %q: %w", id, err)
	}
	if err := ValidateID(id); err != nil {
		return err
	}
	id = r.key(id)
	if err := validatePort(id, port); err != nil {
		return err
	}
	err := r.withSession(ctx, nil, plan{}, func(s *session) error {
		t, err := s.begin(true, false)
		if err != nil {
			return err
		}
		defer t.rollback()
		e, ok, err := t.main.Get(id)
		if err != nil {
			return err
		}
		if ok {
			if e.Port == port {
				return nil
			}
			return &PortError{ID: id, Port: port, Held: e.Port, Err: ErrIDBound}
		}
		if err := t.portFree(id, port); err != nil {
			return err
		}
		now := r.opts.Now()
		if err := t.put(t.main, store.Entry{ID: id, Port: port, Kind: store.Stable, Created: now, Updated: now, Dir: r.dir()}); err != nil {
			return err
		}
		return t.commit()
	})
	if err != nil {
		return fmt.Errorf("bind %q: %w", id, err)
	}
	return nil
}

// Lookup returns id's assignment, or an error wrapping [ErrNotFound].
// It never assigns.
func (r *Registry) Lookup(ctx context.Context, id string) (Assignment, error) {
	if err := r.usable(); err != nil {
		return Assignment{}, fmt.Errorf("lookup %q: %w", id, err)
	}
	if err := ValidateID(id); err != nil {
		return Assignment{}, err
	}
	id = r.key(id)
	e, ok, _, err := r.peekMaybe(ctx, false, id)
	a, err := found(e, ok, err)
	if errors.Is(err, errNoFile) {
		err = ErrNotFound
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("lookup %q: %w", id, err)
	}
	return a, nil
}

// Release removes id's assignment and returns what it was, or an error
// wrapping [ErrNotFound] when id has none.
func (r *Registry) Release(ctx context.Context, id string) (Assignment, error) {
	if err := r.usable(); err != nil {
		return Assignment{}, fmt.Errorf("release %q: %w", id, err)
	}
	if err := ValidateID(id); err != nil {
		return Assignment{}, err
	}
	id = r.key(id)
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		return Assignment{}, fmt.Errorf("release %q: %w", id, ErrNotFound)
	}
	var a Assignment
	err := r.update(ctx, func(tx *store.Tx) (err error) {
		a, err = found(tx.Delete(id))
		return err
	})
	if err != nil {
		return Assignment{}, fmt.Errorf("release %q: %w", id, err)
	}
	return a, nil
}

// List returns every assignment, stable ones and leases, sorted by id
// (byte order). A registry that does not exist yet is empty.
func (r *Registry) List(ctx context.Context) ([]Assignment, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	out := []Assignment{}
	err := r.each(ctx, func(e store.Entry) error {
		out = append(out, fromEntry(e))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	slices.SortFunc(out, func(a, b Assignment) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// each calls fn for every entry of both files, under the shared lock.
//
// Both are read with store.PeekEach, not opened: see peekMaybe.
func (r *Registry) each(ctx context.Context, fn func(store.Entry) error) error {
	l, _, err := r.sharedLock(ctx, false)
	if l == nil {
		if errors.Is(err, errNoFile) {
			return nil
		}
		return err
	}
	defer l.Unlock()
	if _, err := store.PeekEach(r.path, fn); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	path, _ := r.leaseFile()
	if _, err := store.PeekEach(path, fn); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// tryLock takes the lock if it is free now (see lock.TryAcquire).
func (r *Registry) tryLock(mode lock.Mode) (*lock.Lock, bool, error) {
	return lock.TryAcquire(r.lockPath, mode, lock.Perm(r.filePerm()))
}
