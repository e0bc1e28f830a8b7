package store_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/store"
)

// put makes a registry at path holding one stable entry: a new file, one
// commit after its creation.
func put(t *testing.T, path string, e store.Entry) {
	t.Helper()
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error { return tx.Put(e) }))
	require.NoError(t, db.Close())
}

func generation(t *testing.T, path string) store.Generation {
	t.Helper()
	g, err := store.ReadGeneration(path)
	require.NoError(t, err)
	return g
}

// Reading a registry leaves its generation alone; a commit changes it, and
// so does another registry copied over it in place (same inode), even one
// whose header is alike (the same number of commits).
func TestGenerationTellsAReplacedFile(t *testing.T) {
	path, other := regPath(t), regPath(t)
	put(t, path, stable("web", 8000))
	put(t, other, stable("api", 8000))
	g := generation(t, path)

	db, err := store.Open(path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *store.Tx) error { return tx.Check() }))
	require.NoError(t, db.Close())
	assert.True(t, g.Same(generation(t, path)), "a read is no change")
	assert.False(t, g.Same(generation(t, other)), "another file")

	b, err := os.ReadFile(other)
	require.NoError(t, err)
	before, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "replaced in place")
	if runtime.GOOS != "windows" { // the modification time stands in for a ctime there
		// Put the modification time back, as cp -p would: nothing a
		// user can set makes the file pass for its old state.
		require.NoError(t, os.Chtimes(path, before.ModTime(), before.ModTime()))
	}
	assert.False(t, g.Same(generation(t, path)), "the file was replaced")

	g = generation(t, path)
	put(t, path, stable("db", 9000))
	assert.False(t, g.Same(generation(t, path)), "a commit")
	assert.False(t, store.Generation{}.Same(store.Generation{}), "the zero Generation is no state")
}
