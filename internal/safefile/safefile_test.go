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
