//go:build unix

package lock_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
)

func TestAFIFOInPlaceOfTheLockFileIsRefusedWithoutBlocking(t *testing.T) {
	path := lockPath(t)
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	_, err := acquireWithin(t, path, lock.Shared, 5*time.Second)
	require.ErrorIs(t, err, lock.ErrNotRegular)
	_, _, err = lock.TryAcquire(path, lock.Exclusive)
	require.ErrorIs(t, err, lock.ErrNotRegular)
}

func TestALockedFIFOInPlaceOfTheLockFileIsRefusedWithoutWaiting(t *testing.T) {
	path := lockPath(t)
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer syscall.Close(fd)
	require.NoError(t, syscall.Flock(fd, syscall.LOCK_EX)) // whoever put it there holds it

	start := time.Now()
	_, err = acquireWithin(t, path, lock.Shared, 5*time.Second)
	require.ErrorIs(t, err, lock.ErrNotRegular)
	assert.Less(t, time.Since(start), 2*time.Second, "refused before waiting on it")
}
