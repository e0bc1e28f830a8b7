//go:build unix

package safefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDirWorksRelativeToItsDescriptor(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "d")
	require.NoError(t, MkdirGroup(path, 0o700, -1))
	d, err := OpenDir(path)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.Create("a", 0o640, []byte("hello")))
	b, uid, err := d.ReadFile("a", 5)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	assert.Equal(t, os.Geteuid(), uid)
	_, _, err = d.ReadFile("a", 4)
	assert.ErrorIs(t, err, ErrNotRegular, "longer than the limit")
	fi, err := os.Stat(filepath.Join(path, "a"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

	// The directory moved away and a link put in its place: d still works
	// on the directory it opened.
	require.NoError(t, os.Rename(path, filepath.Join(base, "moved")))
	require.NoError(t, os.Symlink(t.TempDir(), path))
	require.NoError(t, d.Rename("a", "b"))
	names, err := d.Names()
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, names)
	require.NoError(t, d.Remove("b"))
	_, err = OpenDir(path)
	assert.ErrorIs(t, err, ErrNotDir, "a link is refused")

	for _, bad := range []string{"", ".", "..", "../x", "x/y"} {
		assert.Error(t, d.Create(bad, 0o600, nil), "%q", bad)
		assert.Error(t, d.Remove(bad), "%q", bad)
	}
}

func TestDirReadFileNeverFollowsOrBlocks(t *testing.T) {
	path := t.TempDir()
	d, err := OpenDir(path)
	require.NoError(t, err)
	defer d.Close()
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("x"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(path, "link")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(path, "fifo"), 0o600))
	for _, name := range []string{"link", "fifo"} {
		_, _, err := d.ReadFile(name, 10)
		assert.ErrorIs(t, err, ErrNotRegular, name)
	}
	_, ok := d.Age("link")
	assert.True(t, ok, "Age looks at the link itself")
}

func TestDirRemovesAnEmptyDirectoryUnderAFilesName(t *testing.T) {
	path := t.TempDir()
	d, err := OpenDir(path)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, os.Mkdir(filepath.Join(path, "empty"), 0o700))
	require.NoError(t, d.Remove("empty"))
	require.NoError(t, os.MkdirAll(filepath.Join(path, "full", "x"), 0o700))
	assert.Error(t, d.Remove("full"), "not an empty directory")
}
