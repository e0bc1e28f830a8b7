//go:build unix

package safefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("private"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(secret, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	_, err := ReadFile(link, 100)
	assert.ErrorIs(t, err, syscall.ELOOP, "a link is not followed")
	_, err = ReadFile(fifo, 100)
	assert.ErrorIs(t, err, ErrNotRegular, "a FIFO is refused, without blocking")
	_, err = ReadFile(dir, 100)
	assert.Error(t, err)
	_, err = ReadFile("/dev/zero", 100)
	assert.Error(t, err, "no endless reads")

	b, err := ReadFile(secret, 100)
	require.NoError(t, err)
	assert.Equal(t, "private", string(b))
	_, err = ReadFile(secret, 3)
	assert.Error(t, err, "too long")

	// Create replaces a link instead of writing through it.
	f, err := Create(link, 0o640)
	require.NoError(t, err)
	_, err = f.WriteString("answer")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	b, err = os.ReadFile(secret)
	require.NoError(t, err)
	assert.Equal(t, "private", string(b), "the link's target is untouched")
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

// withUmask runs fn with the process umask set to mask. The umask is
// process-wide: tests using it must not run in parallel.
func withUmask(mask int, fn func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	fn()
}

func TestOpenCreatesWithExactlyThePermissionsAskedFor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shared.lock")
	withUmask(0o077, func() { // a umask that would take the group's bits away
		f, err := Open(path, os.O_RDONLY|os.O_CREATE, 0o660)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	})
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "exactly, whatever the umask")

	// An existing file is opened as it is: its mode and contents stay.
	require.NoError(t, os.Chmod(path, 0o640))
	require.NoError(t, os.WriteFile(path, []byte("kept"), 0o640))
	f, err := Open(path, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	fi, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(b))

	_, err = Open(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	assert.ErrorIs(t, err, os.ErrExist, "O_EXCL still means new only")
	_, err = Open(filepath.Join(dir, "missing", "x"), os.O_RDONLY|os.O_CREATE, 0o600)
	assert.ErrorIs(t, err, os.ErrNotExist, "no directory is made")
}

func TestOpenRefusesLinksAndOddFilesEvenWhenCreating(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	dangling := filepath.Join(dir, "dangling")
	require.NoError(t, os.Symlink(target, dangling))
	_, err := Open(dangling, os.O_RDONLY|os.O_CREATE, 0o600)
	assert.ErrorIs(t, err, syscall.ELOOP)
	_, err = os.Lstat(target)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing created through the link")

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, flag := range []int{os.O_RDONLY, os.O_RDONLY | os.O_CREATE, os.O_RDWR} {
		_, err = Open(fifo, flag, 0o600) // would block for ever without O_NONBLOCK
		assert.ErrorIs(t, err, ErrNotRegular, "flag %#x", flag)
		assert.Contains(t, err.Error(), "is a FIFO")
	}
	_, err = Open(dir, os.O_RDONLY, 0)
	assert.ErrorIs(t, err, ErrNotRegular)
	assert.Contains(t, err.Error(), "is a directory")
	assert.Contains(t, err.Error(), dir, "the error names the path")
}

func TestOpenReturnsABlockingFile(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "f"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer f.Close()
	raw, err := f.SyscallConn()
	require.NoError(t, err)
	var flags int
	var ferr error
	require.NoError(t, raw.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }))
	require.NoError(t, ferr)
	assert.Zero(t, flags&unix.O_NONBLOCK, "O_NONBLOCK, used only to open safely, is cleared")
	assert.NotZero(t, flags&unix.O_APPEND, "O_APPEND, asked for, is kept")
}
