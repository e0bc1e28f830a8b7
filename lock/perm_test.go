//go:build unix

package lock_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/lock"
)

// withUmask runs fn with the process umask set to mask. The umask is
// process-wide: tests using it must not run in parallel.
func withUmask(mask int, fn func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	fn()
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular())
	return fi.Mode().Perm()
}

func TestPermSetsTheModeOfANewLockFileExactly(t *testing.T) {
	dir := t.TempDir()
	acquire := func(path string, opts ...lock.Option) {
		l, err := lock.Acquire(context.Background(), path, lock.Exclusive, opts...)
		require.NoError(t, err)
		require.NoError(t, l.Unlock())
	}
	try := func(path string, opts ...lock.Option) {
		l, ok, err := lock.TryAcquire(path, lock.Shared, opts...)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, l.Unlock())
	}
	poll := func(path string, opts ...lock.Option) {
		l, err := lock.Poll(context.Background(), path, lock.Exclusive, time.Millisecond, time.Millisecond, nil, opts...)
		require.NoError(t, err)
		require.NoError(t, l.Unlock())
	}
	for name, take := range map[string]func(string, ...lock.Option){"Acquire": acquire, "TryAcquire": try, "Poll": poll} {
		shared := filepath.Join(dir, name+"-shared.lock")
		withUmask(0o077, func() { take(shared, lock.Perm(0o660)) }) // a umask that takes the group's bits away
		assert.Equal(t, os.FileMode(0o660), modeOf(t, shared), "%s: exactly, whatever the umask", name)

		private := filepath.Join(dir, name+"-private.lock")
		withUmask(0, func() { take(private) })
		assert.Equal(t, os.FileMode(0o600), modeOf(t, private), "%s: 0600 by default, even under umask 0", name)

		// An existing lock file keeps its mode: Perm is for files it creates.
		take(private, lock.Perm(0o660))
		assert.Equal(t, os.FileMode(0o600), modeOf(t, private), name)
	}
}

func TestADanglingLinkInPlaceOfTheLockFileIsRefusedAndCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	path := filepath.Join(dir, "registry.db.lock")
	require.NoError(t, os.Symlink(target, path))
	_, err := lock.Acquire(context.Background(), path, lock.Exclusive, lock.Perm(0o660))
	assert.ErrorIs(t, err, syscall.ELOOP)
	_, _, err = lock.TryAcquire(path, lock.Shared)
	assert.ErrorIs(t, err, syscall.ELOOP)
	_, err = os.Lstat(target)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing created through the link")
}

func TestErrNotRegularIsSafefiles(t *testing.T) {
	assert.Same(t, safefile.ErrNotRegular, lock.ErrNotRegular)
	path := lockPath(t)
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	_, err := lock.Poll(context.Background(), path, lock.Exclusive, time.Millisecond, time.Millisecond, nil)
	assert.ErrorIs(t, err, safefile.ErrNotRegular)
	assert.Contains(t, err.Error(), path)
}
