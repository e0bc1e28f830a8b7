//go:build unix

package lock_test

import (
	"syscall"
	"testing"
	"time"

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
