package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/store"
)

// A member of a shared registry can write any key with the public store
// package (or bbolt): names are validated when written through registry,
// not when read. What portfor prints of them must still carry no terminal
// control bytes and keep one record per line.
func TestHostileStoredNamesAreEscaped(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	var out, errOut strings.Builder
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "forward", "web"}, &out, &errOut), errOut.String())
	hostile := []string{"w\x1b]0;PWNED\x07", "w\u009b2J", "w\nfake\tport 1"}
	s, err := store.Open(db, store.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Update(func(tx *store.Tx) error {
		for i, id := range hostile {
			if err := tx.Put(store.Entry{ID: id, Port: 9400 + i, Kind: store.Stable}); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, s.Close())

	for _, args := range [][]string{{"list"}, {"completion", "__complete", "get", "w"}, {"doctor"}, {"get", hostile[0]}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			runApp(context.Background(), append([]string{"portfor", "--db", db}, args...), &out, &errOut)
			for _, b := range []string{"\x1b", "\x07", "\u009b"} {
				assert.NotContains(t, out.String(), b, "stdout %q", out.String())
				assert.NotContains(t, errOut.String(), b, "stderr %q", errOut.String())
			}
			assert.NotContains(t, out.String(), "fake\t", "a name's newline made a record of its own: %q", out.String())
		})
	}
}
