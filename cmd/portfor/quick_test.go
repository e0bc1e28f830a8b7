package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommandNamesAreTheApps(t *testing.T) {
	want := append(cliNames(newApp(io.Discard, io.Discard)), "help", "h")
	slices.Sort(want)
	got := slices.Clone(commandNames[:])
	slices.Sort(got)
	assert.Equal(t, want, got)
}

// TestQuickHitAnswersAsTheFullPath runs each command line through run (with
// the quick path) and through runApp (without), on registries in the same
// state, and wants the same stdout, stderr and exit status.
func TestQuickHitAnswersAsTheFullPath(t *testing.T) {
	setup := func(t *testing.T) string {
		db := filepath.Join(t.TempDir(), "registry.db")
		var out, errOut strings.Builder
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "forward", "web", "lsit", "list-x"}, &out, &errOut), errOut.String())
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "forward", "8500"}, &out, &errOut), errOut.String())
		return db
	}
	for _, args := range [][]string{
		{"web"}, {"--db", "DB", "web"}, {"web", "--db", "DB"}, {"--db=DB", "web"}, {"--lock-timeout", "2", "web"},
		{"--lock-timeout=0.5s", "web"}, {"--lock-timeout", "soon", "web"}, {"lsit"}, {"8500"}, {"list-x"},
		{"nosuch"}, {"list"}, {"help"}, {"h"}, {"web", "8000"}, {"web", "--"}, {"--", "web"}, {"-v"},
		{"--timeout", "2", "web"}, {"web", "-h"}, {"lease:1"}, {"bad name"}, {"--db"}, {"web", "--lock-timeout"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Setenv("PORTFOR_DB", "")
			assert.Equal(t, runOn(t, runApp, setup, nil, args...), runOn(t, run, setup, nil, args...))
		})
	}
	var code int
	assert.False(t, quickHit(context.Background(), []string{"portfor", "list"}, io.Discard, io.Discard, &code))
}

type failingWriter struct{ calls int }

func (w *failingWriter) Write([]byte) (int, error) {
	w.calls++
	return 0, errors.New("no room")
}

// A port that could not be written is said so, once: the full path does not
// try again after a write that may have been partial.
func TestQuickHitWriteFails(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	var out, errOut strings.Builder
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "web"}, &out, &errOut))
	w := &failingWriter{}
	errOut.Reset()
	assert.Equal(t, exitFailed, run(context.Background(), []string{"portfor", "--db", db, "web"}, w, &errOut))
	assert.Equal(t, 1, w.calls)
	assert.Equal(t, "portfor: write the port: no room\n", errOut.String())
}

// appFunc is run (with the quick paths) or runApp (without).
type appFunc func(context.Context, []string, io.Writer, io.Writer) int

// runOn makes a registry with setup (env unset), points PORTFOR_DB at it, sets env,
// and runs portfor args through f, "DB" in args standing for the
// registry's path. It returns stdout, stderr (the path written "DB") and
// the status, for comparing the two paths.
func runOn(t *testing.T, f appFunc, setup func(*testing.T) string, env map[string]string, args ...string) [3]any {
	t.Helper()
	for k := range env { // unset while setup runs (a run before may have set them)
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	db := setup(t)
	t.Setenv("PORTFOR_DB", db)
	for k, v := range env {
		t.Setenv(k, v)
	}
	full := []string{"portfor"}
	for _, a := range args {
		full = append(full, strings.ReplaceAll(a, "DB", db))
	}
	var out, errOut strings.Builder
	code := f(context.Background(), full, &out, &errOut)
	return [3]any{out.String(), strings.ReplaceAll(errOut.String(), db, "DB"), code}
}
