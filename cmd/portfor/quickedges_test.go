package main

import (
	"context"
	"io"
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
			run1 := func(f func(context.Context, []string, io.Writer, io.Writer) int) [3]any {
				t.Setenv("PORTFOR_LOCK_TIMEOUT", "5s")
				db := setup(t)
				t.Setenv("PORTFOR_DB", db)
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				var out, errOut strings.Builder
				code := f(context.Background(), append([]string{"portfor"}, c.args...), &out, &errOut)
				return [3]any{out.String(), strings.ReplaceAll(errOut.String(), db, "DB"), code}
			}
			assert.Equal(t, run1(runApp), run1(run))
		})
	}
}
