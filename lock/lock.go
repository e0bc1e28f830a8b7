// Package lock is a cross-process reader/writer lock on a file: flock(2) on
// Unix, LockFileEx on Windows.
//
// A caller takes the lock with [Acquire], which honours a context: it returns
// as soon as the lock is granted, or when the context is done, whichever
// comes first. While it waits it blocks in the kernel (a blocking flock), so
// it uses no CPU and is woken the moment the holder lets go: the hand-over is
// as fast as the kernel makes it. [Poll] instead polls, trying again after a
// doubling delay, for callers that may stop wanting the lock (see there).
//
// The lock file is a sidecar: a separate, empty file whose only purpose is to
// be locked. Package lock knows nothing of what the lock protects. It opens
// the file through internal/safefile, so a link, FIFO or device put in its
// place is refused rather than followed, blocked on or locked, and creates
// it with exact permissions (0600, or as [Perm] says).
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
	"os"
	"sync"
	"time"

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
	path string
	mode Mode

	mu sync.Mutex
	f  *os.File // nil once unlocked
}

// open opens (or creates) the lock file through package safefile: no
// following a link, no blocking on a FIFO, a regular file only.
func open(path string, mode Mode, opts []Option) (*Lock, error) {
	o := options{perm: 0o600}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := safefile.Open(path, openFlag|os.O_CREATE, o.perm)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{path: path, mode: mode, f: f}, nil
}

// try takes the lock on l's open file if it is free now; busy is false
// with a nil error. On an error the file is closed.
func (l *Lock) try() (bool, error) {
	ok, err := lockFile(l.f, l.mode, false)
	if err != nil {
		_ = l.f.Close()
		return false, fmt.Errorf("lock %s: %w", l.path, err)
	}
	return ok, nil
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
	l, err := open(path, mode, opts)
	if err != nil {
		return nil, err
	}
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
	if l, err = open(path, mode, opts); err != nil {
		return nil, false, err
	}
	if ok, err = l.try(); !ok {
		if err == nil {
			_ = l.f.Close()
		}
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
// in the kernel. It is for callers that also wait on something else and may
// stop wanting the lock: an abandoned blocking wait still takes the lock
// for an instant when it is granted, which under heavy contention costs
// every other waiter a wake-up; an abandoned poll costs nothing.
func Poll(ctx context.Context, path string, mode Mode, first, maxDelay time.Duration, opts ...Option) (*Lock, error) {
	start := time.Now()
	l, err := open(path, mode, opts)
	if err != nil {
		return nil, err
	}
	b := backoff.New(first, maxDelay)
	for {
		if ok, err := l.try(); err != nil {
			return nil, err
		} else if ok {
			return l, nil
		}
		if b.Wait(ctx) != nil {
			_ = l.f.Close()
			return nil, l.timeout(ctx, start)
		}
	}
}

// wait blocks in the kernel on a goroutine of its own and returns when the
// lock is granted or ctx is done.
func (l *Lock) wait(ctx context.Context) (*Lock, error) {
	start := time.Now()
	if ctx.Err() != nil {
		_ = l.f.Close()
		return nil, l.timeout(ctx, start)
	}
	granted := make(chan error) // unbuffered: a grant nobody takes must go to the abandoned branch
	abandoned := make(chan struct{})
	go func() {
		_, err := lockFile(l.f, l.mode, true)
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
				return l, nil
			}
			_ = l.f.Close()
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
		return nil, fmt.Errorf("lock %s: %w", l.path, err)
	}
	return l, nil
}

func (l *Lock) timeout(ctx context.Context, start time.Time) error {
	return &TimeoutError{
		Path:   l.path,
		Mode:   l.mode,
		Waited: time.Since(start),
		Holder: holderPID(l.path),
		Err:    ctx.Err(),
	}
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Mode returns the mode the lock was granted in.
func (l *Lock) Mode() Mode { return l.mode }

// Unlock releases the lock and closes its file descriptor. It is safe to call
// more than once.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr // closing lets go of the lock too, so it is done either way
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}
