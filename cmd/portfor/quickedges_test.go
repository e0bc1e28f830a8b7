package main

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuickHitEdges holds command lines and environments where run (with the
// quick path) and runApp (without) once answered differently: each gives
// the same stdout, stderr and exit status both ways.
func TestQuickHitEdges(t *testing.T) {
	setup := func(t *testing.T) string {
		db := filepath.Join(t.TempDir(), "registry.db")
		var out, errOut strings.Builder
		for _, args := range [][]string{{"forward", "web"}, {"bind", "a=b", "9123"}, {"bind", "x=7000", "9124"}} {
			require.Equal(t, 0, runApp(context.Background(), append([]string{"portfor", "--db", db}, args...), &out, &errOut), errOut.String())
		}
		return db
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		// An empty first argument is NAME to the full path, and "web" PORT.
		{"empty NAME before a name", nil, []string{"", "web"}},
		// A set but empty $PORTFOR_LOCK_TIMEOUT is an error (urfave/cli
		// takes the empty value).
		{"empty PORTFOR_LOCK_TIMEOUT", map[string]string{"PORTFOR_LOCK_TIMEOUT": ""}, []string{"web"}},
		// The shorthand reads NAME=PORT, even where a registered name
		// contains '='.
		{"name with = and a non-port", nil, []string{"a=b"}},
		{"name with = and a port", nil, []string{"x=7000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"PORTFOR_LOCK_TIMEOUT": "5s"}
			maps.Copy(env, c.env)
			assert.Equal(t, runOn(t, runApp, setup, env, c.args...), runOn(t, run, setup, env, c.args...))
		})
	}
}

// TestQuickRunAnswersAsTheFullPath: `portfor run` through run (quick path
// for known names) and through runApp give CMD the same environment and
// arguments and the same output and status. In process, CMD runs as a
// child either way.
func TestQuickRunAnswersAsTheFullPath(t *testing.T) {
	setup := func(t *testing.T) string {
		db := filepath.Join(t.TempDir(), "registry.db")
		var out, errOut strings.Builder
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "forward", "web", "api", "my-web"}, &out, &errOut), errOut.String())
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "--scope", "s1", "forward", "web"}, &out, &errOut), errOut.String())
		return db
	}
	for _, args := range [][]string{
		{"run", "web", "--", "sh", "-c", "echo $PORT $WEB_PORT $API_PORT"},
		{"run", "web", "api", "my-web", "--", "sh", "-c", "echo $PORT $WEB_PORT $API_PORT $MY_WEB_PORT"},
		{"run", "api", "--", "echo", "{port}", "{port:api}", "x{port}y"},
		{"--scope", "s1", "run", "web", "--", "sh", "-c", "echo $WEB_PORT"},
		{"run", "web", "--", "echo", "{port:nosuch}"},
		{"run", "web", "--", "sh", "-c", "exit 3"},
		{"run", "web", "--", "/nonexistent/cmd"},
		{"run", "nosuch", "--", "sh", "-c", "echo $NOSUCH_PORT"},
		{"run", "web=18555", "--", "sh", "-c", "echo $WEB_PORT"},
		{"run", "web", "--"},
		{"run", "--", "true"},
		{"run", "web", "my_web", "--", "true"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			full, quick := runOn(t, runApp, setup, nil, args...), runOn(t, run, setup, nil, args...)
			if args[1] == "nosuch" {
				// A new name gets a port the full path chooses: compare the shape.
				assert.Equal(t, full[2], quick[2])
				return
			}
			assert.Equal(t, full, quick)
		})
	}
}

// The quick path takes a run of known names, and leaves the rest.
func TestQuickRunTakesKnownNamesOnly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	var out, errOut strings.Builder
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "forward", "web"}, &out, &errOut))
	for args, want := range map[string]bool{
		"run web -- true":            true,
		"run nosuch -- true":         false,
		"run --listen web -- true":   false,
		"run web=1 -- true":          false,
		"run web -- /nonexistent/x":  false,
		"--scope s9 run web -- true": false,
	} {
		var code int
		got := quickRun(context.Background(), append([]string{"portfor", "--db", db}, strings.Fields(args)...), &out, &errOut, &code)
		assert.Equal(t, want, got, args)
	}
}
