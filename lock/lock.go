// Package lock is a cross-process reader/writer lock on a file, built on
// github.com/gofrs/flock (flock(2) on Unix, LockFileEx on Windows).
//
// A caller takes the lock with [Acquire], which honours a context: it returns
// as soon as the lock is granted, or when the context is done, whichever
// comes first. While it waits it sleeps in the kernel (a blocking flock), so
// it uses no CPU and is woken the moment the holder lets go: the hand-over is
// as fast as the kernel makes it, with no polling interval.
//
// The lock file is a sidecar: a separate, empty file whose only purpose is to
// be locked. Package lock knows nothing of what the lock protects.
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
	"time"

	"github.com/gofrs/flock"
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

// TimeoutError is returned by [Acquire] when its context ends before the lock
// is granted. It unwraps to both [ErrLocked] and the context's error
// ([context.DeadlineExceeded] or [context.Canceled]).
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

// Lock is a granted lock. Release it with [Lock.Unlock].
type Lock struct {
	f    *flock.Flock
	mode Mode
}

// Acquire takes a lock of the given mode on the file at path, creating the
// file (mode 0600) when it does not exist. The directory must exist.
//
// It returns at once when the lock is free. Otherwise it waits until the lock
// is granted or ctx is done; in the second case it returns a [*TimeoutError].
// A ctx that is already done is honoured only when the lock is busy: a free
// lock is granted regardless, as a non-blocking try costs nothing.
func Acquire(ctx context.Context, path string, mode Mode) (*Lock, error) {
	if l, ok, err := TryAcquire(path, mode); ok || err != nil {
		return l, err
	}
	l := &Lock{f: flock.New(path, flock.SetFlag(openFlags), flock.SetPermissions(fs.FileMode(0o600))), mode: mode}
	return l.wait(ctx)
}

// TryAcquire takes the lock if it is free right now and reports whether it
// did; busy is a result (ok false, nil error), not an error.
func TryAcquire(path string, mode Mode) (l *Lock, ok bool, err error) {
	f := flock.New(path, flock.SetFlag(openFlags), flock.SetPermissions(fs.FileMode(0o600)))
	if mode == Exclusive {
		ok, err = f.TryLock()
	} else {
		ok, err = f.TryRLock()
	}
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, false, nil
	}
	l = &Lock{f: f, mode: mode}
	if err := l.checkRegular(); err != nil {
		return nil, false, err
	}
	return l, true, nil
}

// ErrNotRegular is returned when the lock path holds something other than
// a regular file (a FIFO or device someone put there).
var ErrNotRegular = errors.New("lock file is not a regular file")

// checkRegular lets go of l and fails unless its file is a regular file.
func (l *Lock) checkRegular() error {
	fi, err := l.f.Stat()
	if err == nil && fi.Mode().IsRegular() {
		return nil
	}
	_ = l.f.Close()
	if err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Path(), err)
	}
	return fmt.Errorf("lock %s: %w (%s)", l.f.Path(), ErrNotRegular, fi.Mode().Type())
}

// Poll takes the lock like [Acquire], but waits by trying again after
// first, then twice as long each time up to maxDelay, instead of blocking
// in the kernel. It is for callers that also wait for something else: before
// each try it calls stop (when not nil), and returns (nil, nil) without the
// lock as soon as stop reports true. An abandoned blocking wait would still
// take the lock for an instant when it is granted, which under heavy
// contention costs every other waiter a wake-up; an abandoned poll costs
// nothing.
func Poll(ctx context.Context, path string, mode Mode, first, maxDelay time.Duration, stop func() bool) (*Lock, error) {
	start := time.Now()
	delay := first
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if stop != nil && stop() {
			return nil, nil
		}
		if l, ok, err := TryAcquire(path, mode); ok || err != nil {
			return l, err
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			l := &Lock{f: flock.New(path), mode: mode}
			return nil, l.timeout(ctx, start)
		case <-timer.C:
		}
		delay = min(2*delay, maxDelay)
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
		var err error
		if l.mode == Exclusive {
			err = l.f.Lock()
		} else {
			err = l.f.RLock()
		}
		select {
		case granted <- err:
		case <-abandoned:
			_ = l.f.Close() // nobody wants it any more: hand it on at once
		}
	}()
	select {
	case err := <-granted:
		if err != nil {
			_ = l.f.Close()
			return nil, fmt.Errorf("lock %s: %w", l.f.Path(), err)
		}
		if err := l.checkRegular(); err != nil {
			return nil, err
		}
		return l, nil
	case <-ctx.Done():
		select {
		case err := <-granted: // granted in the same instant: still ours
			if err == nil {
				if err := l.checkRegular(); err != nil {
					return nil, err
				}
				return l, nil
			}
			_ = l.f.Close()
		default:
			close(abandoned)
		}
		return nil, l.timeout(ctx, start)
	}
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
