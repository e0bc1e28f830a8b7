package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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

// A process chooses its own program name (the name it is run under) and
// command line, and a member of a shared registry any name: doctor's note
// on a server running in another name's directory prints them, and must
// escape them as list and who do.
func TestHostileHoldersInDoctorAreEscaped(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	away := t.TempDir()
	o := inDir(t, away, db, nil, "api")
	require.Equal(t, 0, o.code, o.stderr)
	port := freePort(t)
	s, err := store.Open(db, store.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Update(func(tx *store.Tx) error {
		return tx.Put(store.Entry{ID: "w\x1b]0;PWNED\x07", Port: port, Kind: store.Stable, Dir: t.TempDir()})
	}))
	require.NoError(t, s.Close())
	exe := filepath.Join(t.TempDir(), "\x1b[8m\u009b2J")
	require.NoError(t, os.Symlink(os.Args[0], exe))
	_, ok := startListener(t, exe, nil, away, "tcp4", "127.0.0.1:"+strconv.Itoa(port))
	require.True(t, ok)

	o = portfor(t, db, "doctor")
	assert.Contains(t, o.stdout, "is held by pid")
	for _, b := range []string{"\x1b", "\x07", "\u009b"} {
		assert.NotContains(t, o.stdout, b, "stdout %q", o.stdout)
		assert.NotContains(t, o.stderr, b, "stderr %q", o.stderr)
	}
}
