package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Registry states and environments under which run and runApp must agree.
func TestQuickHitRegistryStates(t *testing.T) {
	for _, c := range []struct {
		name  string
		env   map[string]string
		state func(t *testing.T, db string) string // returns the --db to use, "" for $PORTFOR_DB
		args  []string
	}{
		{"corrupt", nil, func(t *testing.T, db string) string {
			require.NoError(t, os.WriteFile(db, []byte(strings.Repeat("garbage!", 1024)), 0o600))
			return ""
		}, []string{"web"}},
		{"symlink", nil, func(t *testing.T, db string) string {
			l := filepath.Join(filepath.Dir(db), "link.db")
			require.NoError(t, os.Symlink(db, l))
			return l
		}, []string{"web"}},
		{"other owner", nil, func(t *testing.T, db string) string {
			_ = os.Chown(db, 65534, 65534)
			return ""
		}, []string{"web"}},
		{"world writable", nil, func(t *testing.T, db string) string {
			require.NoError(t, os.Chmod(db, 0o666))
			return ""
		}, []string{"web"}},
		{"dir world writable", nil, func(t *testing.T, db string) string {
			require.NoError(t, os.Chmod(filepath.Dir(db), 0o777))
			return ""
		}, []string{"web"}},
		{"no lock file", nil, func(t *testing.T, db string) string {
			_ = os.Remove(db + ".lock")
			return ""
		}, []string{"web"}},
		{"XDG relative", map[string]string{"PORTFOR_DB": "", "XDG_STATE_HOME": "rel", "HOME": ""}, func(t *testing.T, db string) string { return "-" }, []string{"web"}},
		{"db empty flag", map[string]string{"XDG_STATE_HOME": "", "HOME": ""}, func(t *testing.T, db string) string { return "=" }, []string{"web"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run1 := func(f func(context.Context, []string, io.Writer, io.Writer) int) [3]any {
				dir := t.TempDir()
				db := filepath.Join(dir, "registry.db")
				var out, errOut strings.Builder
				require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "forward", "web"}, &out, &errOut), errOut.String())
				t.Setenv("PORTFOR_DB", db)
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				args := []string{"portfor"}
				switch p := c.state(t, db); p {
				case "", "-":
				case "=":
					args = append(args, "--db=")
				default:
					args = append(args, "--db", p)
				}
				args = append(args, c.args...)
				out.Reset()
				errOut.Reset()
				code := f(context.Background(), args, &out, &errOut)
				return [3]any{out.String(), strings.ReplaceAll(errOut.String(), dir, "DIR"), code}
			}
			assert.Equal(t, run1(runApp), run1(run))
		})
	}
}

// `portfor a=zz` is refused by the full path before it opens the registry
// (an invalid PORT after '='): the quick path must not have looked a=zz up
// first and, with the lock file missing, created it.
func TestQuickHitCreatesNothingTheFullPathWouldNot(t *testing.T) {
	files := func(f func(context.Context, []string, io.Writer, io.Writer) int) []string {
		dir := t.TempDir()
		db := filepath.Join(dir, "registry.db")
		var out, errOut strings.Builder
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "web"}, &out, &errOut), errOut.String())
		require.NoError(t, os.Remove(db+".lock"))
		f(context.Background(), []string{"portfor", "--db", db, "a=zz"}, &out, &errOut)
		var names []string
		for p := range snapshot(t, dir) {
			names = append(names, strings.TrimPrefix(p, dir))
		}
		return names
	}
	assert.ElementsMatch(t, files(runApp), files(run))
}
