//go:build unix

package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/store"
)

// A FIFO or directory in the registry's place is refused as not a
// registry, without blocking (a FIFO without a writer would block a plain
// open for ever) and without creating anything.
func TestAFIFOOrDirectoryInPlaceOfTheRegistryIsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.db")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	sub := filepath.Join(dir, "dir.db")
	require.NoError(t, os.Mkdir(sub, 0o700))
	for _, path := range []string{fifo, sub} {
		_, err := store.Open(path, store.Options{ReadOnly: true})
		assert.ErrorIs(t, err, store.ErrNotRegistry, path)
		assert.ErrorIs(t, err, safefile.ErrNotRegular, path)
		_, err = store.ReadGeneration(path)
		assert.ErrorIs(t, err, store.ErrNotRegistry, path)
	}
	_, err := store.Open(fifo, store.Options{})
	assert.ErrorIs(t, err, store.ErrNotRegistry, "read-write")
	_, err = store.Open(sub, store.Options{})
	assert.Error(t, err, "read-write on a directory")
	assert.Contains(t, err.Error(), "is a directory")
	fi, err := os.Lstat(fifo)
	require.NoError(t, err)
	assert.Equal(t, os.ModeNamedPipe, fi.Mode().Type(), "left as it was")
}
