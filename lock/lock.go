// Package lock is a cross-process reader/writer lock on a file, built on
// github.com/gofrs/flock (flock(2) on Unix, LockFileEx on Windows).
//
// A caller takes the lock with [Acquire], which honours a context: it returns
// as soon as the lock is granted, or when the context is done, whichever
// comes first. While it waits it blocks in the kernel (a blocking flock), so
// it uses no CPU and is woken the moment the holder lets go: the hand-over is
// as fast as the kernel makes it. [Poll] instead polls, trying again after a
// doubling delay, for callers that may stop wanting the lock (see there).
//
// The lock file is a sidecar: a separate, empty file whose only purpose is to
// be locked. Package lock knows nothing of what the lock protects. It keeps
// internal/safefile's rules: the lock file is opened with safefile's flags,
// so a link put in its place is refused rather than followed and a FIFO is
// never blocked on; something other than a regular file is refused (after
// the lock on it was granted or tried, and let go at once); and a missing
// lock file is created by safefile with exact permissions (0600, or as
// [Perm] says).
//
// # Caveats
//
// flock locks belong to an open file description, not to a goroutine or a
// process: two [Acquire] calls in one process conflict with each other just as
// two processes do, which is what the registry wants.
//
// A blocking flock cannot be interrupted. When the context ends first,
// Acquire returns at once and leaves the waiting system call to finish in the
// background on its own file descriptor; the moment that call is granted the
// lock, it lets it go again. A process that gives up on many waits for a lock
// that is never released therefore parks one OS thread per abandoned wait
// until the holder lets go.
//
// Locks on network file systems (NFS) are only as good as the server's
// emulation of flock.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gofrs/flock"

	"github.com/portfor/portfor/internal/backoff"
	"github.com/portfor/portfor/internal/safefile"
)

// Mode says whether a lock is shared (many holders) or exclusive (one holder).
type Mode int

const (
	// Shared lets any number of shared holders in at once, and no exclusive one.
	Shared Mode = iota
	// Exclusive lets in one holder and no one else.
	Exclusive
)

// String returns "shared" or "exclusive".
func (m Mode) String() string {
	if m == Exclusive {
		return "exclusive"
	}
	return "shared"
}

// ErrLocked is returned (wrapped in a [*TimeoutError]) when the context ends
// before the lock is granted because another holder keeps it.
var ErrLocked = errors.New("locked by another process")

// TimeoutError is returned by [Acquire] and [Poll] when their context ends
// before the lock is granted. It unwraps to both [ErrLocked] and the
// context's error ([context.DeadlineExceeded] or [context.Canceled]).
type TimeoutError struct {
	Path   string        // the lock file
	Mode   Mode          // the mode that was asked for
	Waited time.Duration // how long Acquire waited
	Holder int           // pid of a process holding the lock, 0 when unknown
	Err    error         // the context's error
}

// Error returns a one-line message naming the lock file, how long it waited
// and, where known, which process holds the lock.
func (e *TimeoutError) Error() string {
	holder := ""
	if e.Holder > 0 {
		holder = fmt.Sprintf(" (held by pid %d)", e.Holder)
	}
	reason := "gave up"
	if errors.Is(e.Err, context.DeadlineExceeded) {
		reason = "timed out"
	} else if errors.Is(e.Err, context.Canceled) {
		reason = "canceled"
	}
	return fmt.Sprintf("lock %s: %s after %s waiting for %s lock%s",
		e.Path, reason, e.Waited.Round(time.Millisecond), e.Mode, holder)
}

// Unwrap returns ErrLocked and the context's error, so errors.Is matches either.
func (e *TimeoutError) Unwrap() []error { return []error{ErrLocked, e.Err} }

// Option changes how [Acquire], [TryAcquire] and [Poll] make the lock file.
type Option func(*options)

type options struct {
	perm os.FileMode
}

// Perm sets the permissions of a lock file that Acquire, TryAcquire or Poll
// creates, exactly, whatever the umask: 0660, say, for a registry shared by
// a group. The default is 0600. A lock file that exists already keeps its
// mode.
func Perm(perm os.FileMode) Option { return func(o *options) { o.perm = perm } }

// Lock is a granted lock. Release it with [Lock.Unlock].
type Lock struct {
	f    *flock.Flock
	mode Mode
	perm os.FileMode // for a lock file this lock creates
}

// newLock prepares a lock of mode on path; nothing is opened yet.
func newLock(path string, mode Mode, opts []Option) *Lock {
	o := options{perm: 0o600}
	for _, opt := range opts {
		opt(&o)
	}
	return &Lock{
		f:    flock.New(path, flock.SetFlag(openFlags), flock.SetPermissions(o.perm)),
		mode: mode,
		perm: o.perm,
	}
}

// withFile runs take, an attempt to lock l's file; when the file does not
// exist, it creates it through safefile (exactly l.perm, whatever the umask)
// and runs take once more. The open gofrs/flock does has no O_CREATE, so an
// existing lock file keeps its mode without a check, and only a lock file
// that is missing costs more than gofrs/flock's one open.
func (l *Lock) withFile(take func() error) error {
	err := take()
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := safefile.Open(l.f.Path(), os.O_RDONLY|os.O_CREATE, l.perm)
	if err != nil {
		return err
	}
	_ = f.Close()
	return take()
}

// try takes the lock if it is free now; busy is false with a nil error.
func (l *Lock) try() (ok bool, err error) {
	err = l.withFile(func() (err error) {
		if l.mode == Exclusive {
			ok, err = l.f.TryLock()
		} else {
			ok, err = l.f.TryRLock()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", l.f.Path(), err)
	}
	if !ok {
		return false, nil
	}
	if err := l.checkRegular(); err != nil {
		return false, err
	}
	return true, nil
}

// lock waits in the kernel until the lock is granted.
func (l *Lock) lock() error {
	return l.withFile(func() error {
		if l.mode == Exclusive {
			return l.f.Lock()
		}
		return l.f.RLock()
	})
}

// checkRegular fails, letting go of the granted lock l, unless its file is
// a regular file. It is one fstat of the descriptor gofrs/flock opened and
// locked, so what it checks is what was locked.
func (l *Lock) checkRegular() error {
	fi, err := l.f.Stat()
	if err == nil {
		err = safefile.CheckRegular(l.f.Path(), fi)
	}
	if err != nil {
		_ = l.f.Close()
		return fmt.Errorf("lock %s: %w", l.f.Path(), err)
	}
	return nil
}

// Acquire takes a lock of the given mode on the file at path, creating the
// file (mode 0600, or as [Perm] says) when it does not exist. The directory
// must exist. Something other than a regular file at path (a link, FIFO or
// device someone put there) is an error: for a link, one wrapping ELOOP on
// Unix; otherwise one wrapping [ErrNotRegular].
//
// It returns at once when the lock is free. Otherwise it waits, blocked in
// the kernel, until the lock is granted or ctx is done; in the second case
// it returns a [*TimeoutError].
// A ctx that is already done is honoured only when the lock is busy: a free
// lock is granted regardless, as a non-blocking try costs nothing.
func Acquire(ctx context.Context, path string, mode Mode, opts ...Option) (*Lock, error) {
	l := newLock(path, mode, opts)
	if ok, err := l.try(); err != nil {
		return nil, err
	} else if ok {
		return l, nil
	}
	return l.wait(ctx)
}

// TryAcquire takes the lock if it is free right now and reports whether it
// did; busy is a result (ok false, nil error), not an error. It makes and
// checks the lock file as [Acquire] does.
func TryAcquire(path string, mode Mode, opts ...Option) (l *Lock, ok bool, err error) {
	l = newLock(path, mode, opts)
	if ok, err = l.try(); !ok {
		return nil, false, err
	}
	return l, true, nil
}

// ErrNotRegular is returned (wrapped) when the lock path holds something
// other than a regular file (a FIFO or device someone put there). It is the
// sentinel of internal/safefile, which opens every file portfor keeps, so
// errors.Is matches it whichever package reports it.
var ErrNotRegular = safefile.ErrNotRegular

// Poll takes the lock like [Acquire], but waits by trying again after
// first, then twice as long each time up to maxDelay, instead of blocking
// in the kernel. It is for callers that also wait for something else: before
// each try it calls stop (when not nil), and returns (nil, nil) without the
// lock as soon as stop reports true. An abandoned blocking wait would still
// take the lock for an instant when it is granted, which under heavy
// contention costs every other waiter a wake-up; an abandoned poll costs
// nothing.
func Poll(ctx context.Context, path string, mode Mode, first, maxDelay time.Duration, stop func() bool, opts ...Option) (*Lock, error) {
	start := time.Now()
	l := newLock(path, mode, opts)
	b := backoff.New(first, maxDelay)
	for {
		if stop != nil && stop() {
			return nil, nil
		}
		if ok, err := l.try(); err != nil {
			return nil, err
		} else if ok {
			return l, nil
		}
		if b.Wait(ctx) != nil {
			return nil, l.timeout(ctx, start)
		}
	}
}

// wait blocks in the kernel on a goroutine of its own and returns when the
// lock is granted or ctx is done.
func (l *Lock) wait(ctx context.Context) (*Lock, error) {
	start := time.Now()
	if ctx.Err() != nil {
		return nil, l.timeout(ctx, start)
	}
	// The try found the lock busy, and gofrs/flock closed the file it tried.
	// Refuse a FIFO or device someone locked and put there before waiting
	// on it (the fstat once granted stays the check that counts).
	if fi, err := os.Lstat(l.f.Path()); err == nil {
		if err := safefile.CheckRegular(l.f.Path(), fi); err != nil {
			return nil, fmt.Errorf("lock %s: %w", l.f.Path(), err)
		}
	}
	granted := make(chan error) // unbuffered: a grant nobody takes must go to the abandoned branch
	abandoned := make(chan struct{})
	go func() {
		err := l.lock()
		select {
		case granted <- err:
		case <-abandoned:
			_ = l.f.Close() // nobody wants it any more: hand it on at once
		}
	}()
	select {
	case err := <-granted:
		return l.granted(err)
	case <-ctx.Done():
		select {
		case err := <-granted: // granted in the same instant: still ours
			if err == nil {
				return l.granted(nil)
			}
		default:
			close(abandoned)
		}
		return nil, l.timeout(ctx, start)
	}
}

// granted ends a blocking wait that the kernel answered with err.
func (l *Lock) granted(err error) (*Lock, error) {
	if err != nil {
		_ = l.f.Close()
		return nil, fmt.Errorf("lock %s: %w", l.f.Path(), err)
	}
	if err := l.checkRegular(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lock) timeout(ctx context.Context, start time.Time) error {
	return &TimeoutError{
		Path:   l.f.Path(),
		Mode:   l.mode,
		Waited: time.Since(start),
		Holder: holderPID(l.f.Path()),
		Err:    ctx.Err(),
	}
}

// ErrReplaced is returned by [Lock.Check] when the file the lock is held on
// is no longer the one at its path: someone removed or replaced the lock
// file, and a newcomer may now hold a lock of its own on the new file.
var ErrReplaced = errors.New("lock file removed or replaced while held")

// Check reports whether the lock still guards what others lock: the file
// it holds is the one at its path. A holder about to make a change checks
// it first, so that a lock file someone removed (a member of a shared
// directory without the sticky bit can) does not let two holders write at
// once. It costs an fstat and an lstat.
func (l *Lock) Check() error {
	held, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Path(), err)
	}
	now, err := os.Lstat(l.f.Path())
	if err != nil || !os.SameFile(held, now) {
		return fmt.Errorf("lock %s: %w", l.f.Path(), ErrReplaced)
	}
	return nil
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.f.Path() }

// Mode returns the mode the lock was granted in.
func (l *Lock) Mode() Mode { return l.mode }

// Unlock releases the lock and closes its file descriptor. It is safe to call
// more than once.
func (l *Lock) Unlock() error {
	if err := l.f.Unlock(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.f.Path(), err)
	}
	return nil
}
