package lock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
)

// The test binary doubles as a lock holder: with PORTFOR_LOCK_HELPER=mode:path
// it takes the lock, prints "locked", and holds it until its stdin closes.
func TestMain(m *testing.M) {
	if spec := os.Getenv("PORTFOR_LOCK_HELPER"); spec != "" {
		os.Exit(holder(spec))
	}
	os.Exit(m.Run())
}

func holder(spec string) int {
	mode, path, _ := strings.Cut(spec, ":")
	m := lock.Shared
	if mode == "exclusive" {
		m = lock.Exclusive
	}
	l, err := lock.Acquire(context.Background(), path, m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := l.Unlock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHolder starts a child process that holds the lock in mode and returns
// once the child says it has it.
func startHolder(t *testing.T, path string, mode lock.Mode) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PORTFOR_LOCK_HELPER="+mode.String()+":"+path, "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "holder never reported the lock")
	require.Equal(t, "locked\n", line)
	return c
}

// release asks the child to unlock and waits for it to exit cleanly.
func (c *child) release(t *testing.T) {
	t.Helper()
	require.NoError(t, c.stdin.Close())
	require.NoError(t, c.cmd.Wait())
}

func lockPath(t *testing.T) string { return filepath.Join(t.TempDir(), "registry.db.lock") }

func acquireWithin(t *testing.T, path string, mode lock.Mode, d time.Duration) (*lock.Lock, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return lock.Acquire(ctx, path, mode)
}

func TestAcquireCreatesPrivateFile(t *testing.T) {
	path := lockPath(t)
	l, err := lock.Acquire(context.Background(), path, lock.Exclusive)
	require.NoError(t, err)
	defer l.Unlock()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	assert.Equal(t, path, l.Path())
	assert.Equal(t, lock.Exclusive, l.Mode())
}

func TestExclusiveHolderBlocksOthersUntilTimeout(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)

	for _, mode := range []lock.Mode{lock.Shared, lock.Exclusive} {
		_, err := acquireWithin(t, path, mode, 50*time.Millisecond)
		require.Error(t, err, mode.String())
		assert.ErrorIs(t, err, lock.ErrLocked)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var te *lock.TimeoutError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, path, te.Path)
		assert.Equal(t, mode, te.Mode)
		assert.GreaterOrEqual(t, te.Waited, 40*time.Millisecond)
		assert.Contains(t, err.Error(), path)
		assert.NotContains(t, err.Error(), "\n")
		if runtime.GOOS == "linux" {
			assert.Equal(t, h.cmd.Process.Pid, te.Holder, "holder pid from /proc/locks")
			assert.Contains(t, err.Error(), fmt.Sprintf("held by pid %d", h.cmd.Process.Pid))
		}
	}

	h.release(t)
	l, err := acquireWithin(t, path, lock.Exclusive, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Unlock())
}

func TestSharedHoldersCoexistAndKeepWritersOut(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Shared)

	r, err := acquireWithin(t, path, lock.Shared, 10*time.Second)
	require.NoError(t, err, "a second reader must get in beside the first")

	_, err = acquireWithin(t, path, lock.Exclusive, 30*time.Millisecond)
	require.ErrorIs(t, err, lock.ErrLocked)

	require.NoError(t, r.Unlock())
	h.release(t)
	w, err := acquireWithin(t, path, lock.Exclusive, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, w.Unlock())
}

func TestWaiterWakesWhenHolderReleases(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)

	got := make(chan error, 1)
	go func() {
		l, err := acquireWithin(t, path, lock.Exclusive, 30*time.Second)
		if err == nil {
			err = l.Unlock()
		}
		got <- err
	}()
	h.release(t)
	require.NoError(t, <-got)
}

func TestDeadHolderReleasesAtOnce(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL))
	_ = h.cmd.Wait()

	l, err := acquireWithin(t, path, lock.Exclusive, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Unlock())
}

func TestCancelStopsWaitAndAbandonedWaitHandsLockOn(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := lock.Acquire(ctx, path, lock.Exclusive)
		got <- err
	}()
	cancel()
	err := <-got
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, lock.ErrLocked)
	assert.Contains(t, err.Error(), "canceled")

	// The abandoned wait may still be queued in the kernel; once the holder
	// lets go it must not keep the lock.
	h.release(t)
	l, err := acquireWithin(t, path, lock.Exclusive, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Unlock())
}

func TestDoneContextStillGetsAFreeLock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := lock.Acquire(ctx, lockPath(t), lock.Exclusive)
	require.NoError(t, err)
	require.NoError(t, l.Unlock())
	require.NoError(t, l.Unlock(), "second unlock is a no-op")
}

func TestLocksConflictWithinOneProcess(t *testing.T) {
	path := lockPath(t)
	a, err := lock.Acquire(context.Background(), path, lock.Exclusive)
	require.NoError(t, err)
	_, err = acquireWithin(t, path, lock.Exclusive, 20*time.Millisecond)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.NoError(t, a.Unlock())
}

func TestExclusiveIsExclusiveUnderContention(t *testing.T) {
	path := lockPath(t)
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				l, err := acquireWithin(t, path, lock.Exclusive, 30*time.Second)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				inside++
				maxInside = max(maxInside, inside)
				mu.Unlock()
				runtime.Gosched()
				mu.Lock()
				inside--
				mu.Unlock()
				assert.NoError(t, l.Unlock())
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, maxInside)
}

func TestAcquireErrors(t *testing.T) {
	_, err := lock.Acquire(context.Background(), filepath.Join(t.TempDir(), "missing", "x.lock"), lock.Shared)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "missing")
	assert.False(t, errors.Is(err, lock.ErrLocked))

	if runtime.GOOS != "windows" {
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere")
		require.NoError(t, os.WriteFile(target, nil, 0o600))
		link := filepath.Join(dir, "registry.db.lock")
		require.NoError(t, os.Symlink(target, link))
		_, err = lock.Acquire(context.Background(), link, lock.Exclusive)
		require.Error(t, err, "a symlink in place of the lock file is refused")
		assert.ErrorIs(t, err, syscall.ELOOP)
	}
}

func BenchmarkAcquireUncontended(b *testing.B) {
	for _, mode := range []lock.Mode{lock.Shared, lock.Exclusive} {
		b.Run(mode.String(), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.lock")
			ctx := context.Background()
			for b.Loop() {
				l, err := lock.Acquire(ctx, path, mode)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandover measures how long a blocked waiter takes to get the lock
// after the holder releases it (reported as ns/handover).
func BenchmarkHandover(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.lock")
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		l, err := lock.Acquire(ctx, path, lock.Exclusive)
		if err != nil {
			b.Fatal(err)
		}
		released := make(chan time.Time, 1)
		done := make(chan time.Duration, 1)
		go func() {
			w, err := lock.Acquire(ctx, path, lock.Exclusive)
			if err != nil {
				b.Error(err)
				done <- 0
				return
			}
			done <- time.Since(<-released)
			_ = w.Unlock()
		}()
		// Give the waiter a chance to block in the kernel before releasing.
		for i := 0; i < 3; i++ {
			runtime.Gosched()
		}
		released <- time.Now()
		_ = l.Unlock()
		total += <-done
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/handover")
}

func TestTryAcquireReportsBusyAsAResult(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)
	l, ok, err := lock.TryAcquire(path, lock.Shared)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Nil(t, l)
	h.release(t)
	l, ok, err = lock.TryAcquire(path, lock.Shared)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, l.Unlock())
}

func TestPollGetsTheLockOnceFreeAndTimesOutOtherwise(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := lock.Poll(ctx, path, lock.Exclusive, time.Millisecond, 4*time.Millisecond, nil)
	var te *lock.TimeoutError
	require.ErrorAs(t, err, &te)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, path, te.Path)
	assert.GreaterOrEqual(t, te.Waited, 25*time.Millisecond)

	// A done context still gets a free lock, as with Acquire.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	free, err := lock.Poll(done, lockPath(t), lock.Exclusive, time.Millisecond, time.Millisecond, nil)
	require.NoError(t, err)
	require.NoError(t, free.Unlock())

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := lock.Poll(ctx, path, lock.Exclusive, time.Millisecond, 4*time.Millisecond, nil)
		if err == nil {
			err = l.Unlock()
		}
		got <- err
	}()
	h.release(t)
	require.NoError(t, <-got)
}

func TestPollStopsWhenTheOtherThingHappens(t *testing.T) {
	path := lockPath(t)
	h := startHolder(t, path, lock.Exclusive)
	defer h.release(t)
	var calls atomic.Int32
	stop := func() bool { return calls.Add(1) == 3 }
	l, err := lock.Poll(context.Background(), path, lock.Exclusive, time.Microsecond, time.Millisecond, stop)
	require.NoError(t, err)
	assert.Nil(t, l, "stopped without the lock")
	assert.Equal(t, int32(3), calls.Load(), "stop is asked before each try")
}

func TestCheckSeesALockFileReplacedWhileHeld(t *testing.T) {
	path := lockPath(t)
	l, err := lock.Acquire(context.Background(), path, lock.Exclusive)
	require.NoError(t, err)
	defer l.Unlock()
	require.NoError(t, l.Check())
	require.NoError(t, os.Remove(path))
	assert.ErrorIs(t, l.Check(), lock.ErrReplaced, "removed")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	assert.ErrorIs(t, l.Check(), lock.ErrReplaced, "replaced by another file")
}
