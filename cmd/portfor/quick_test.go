package main

import (
	"context"
	"errors"
	"io"
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
			run1 := func(f func(context.Context, []string, io.Writer, io.Writer) int) [3]any {
				db := setup(t)
				t.Setenv("PORTFOR_DB", db)
				full := []string{"portfor"}
				for _, a := range args {
					full = append(full, strings.ReplaceAll(a, "DB", db))
				}
				var out, errOut strings.Builder
				code := f(context.Background(), full, &out, &errOut)
				return [3]any{out.String(), strings.ReplaceAll(errOut.String(), db, "DB"), code}
			}
			assert.Equal(t, run1(runApp), run1(run))
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
