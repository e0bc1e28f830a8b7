package registry_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

// status is an import result as a comparable line.
func statuses(rs []registry.ImportResult) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Status.String() + " " + r.Name
		if r.Err != nil {
			out[i] += ": " + r.Err.Error()
		}
	}
	return out
}

func TestImport(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "api", 18002))
	require.NoError(t, reg.Bind(ctx, "db", 18010))
	require.NoError(t, reg.Bind(ctx, "other", 18004))
	in := bindings{
		pf("web", 18001, 2),    // new
		pf("api", 18002, 3),    // already so
		pf("db", 18003, 4),     // db holds another port
		pf("cache", 18004, 5),  // port is other's
		pf("my app", 18005, 6), // port-for allows it, portfor does not
		pf("zero", 0, 7),
		pf("again", 18001, 8), // the port web got just now
	}
	want := []string{
		"bound web",
		"kept api",
		`conflict db: "db" already holds port 18010, not 18003 (release it first)`,
		`conflict cache: port 18004: already assigned to "other"`,
		`conflict my app: invalid id "my app": contains whitespace`,
		"conflict zero: invalid port 0: want 1-65535",
		`conflict again: port 18001: already assigned to "web"`,
	}

	dry, err := reg.Import(ctx, in, true)
	require.NoError(t, err)
	assert.Equal(t, want, statuses(dry))
	_, err = reg.Lookup(ctx, "web")
	assert.ErrorIs(t, err, registry.ErrNotFound, "a dry run binds nothing")

	got, err := reg.Import(ctx, in, false)
	require.NoError(t, err)
	assert.Equal(t, want, statuses(got))
	assert.ErrorIs(t, got[2].Err, registry.ErrIDBound)
	assert.ErrorIs(t, got[3].Err, registry.ErrPortTaken)
	assert.ErrorIs(t, got[4].Err, registry.ErrInvalidID)
	assert.ErrorIs(t, got[5].Err, registry.ErrInvalidPort)
	a, err := reg.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, 18001, a.Port)
	assert.Equal(t, registry.Stable, a.Kind)

	// Again: everything bound is kept now.
	got, err = reg.Import(ctx, in[:2], false)
	require.NoError(t, err)
	assert.Equal(t, []string{"kept web", "kept api"}, statuses(got))
	all, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 4)
}

func TestImportDryRunCreatesNothing(t *testing.T) {
	reg := mustOpen(t)
	got, err := reg.Import(ctx, bindings{pf("web", 18001, 2), pf("api", 18001, 3), pf("web", 18002, 4)}, true)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"bound web",
		`conflict api: port 18001: already assigned to "web"`,
		`conflict web: "web" already holds port 18001, not 18002 (release it first)`,
	}, statuses(got))
	_, err = os.Stat(reg.Path())
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestImportPortHeldByALease(t *testing.T) {
	reg := mustOpen(t)
	l, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	for _, dry := range []bool{true, false} {
		got, err := reg.Import(ctx, bindings{pf("web", l.Port, 2)}, dry)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, registry.ImportConflict, got[0].Status)
		assert.ErrorIs(t, got[0].Err, registry.ErrPortTaken)
		assert.Contains(t, got[0].Err.Error(), "leased")
	}
}

func TestImportNothing(t *testing.T) {
	reg := mustOpen(t)
	got, err := reg.Import(ctx, nil, false)
	require.NoError(t, err)
	assert.Empty(t, got)
}
