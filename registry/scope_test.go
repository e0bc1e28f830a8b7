package registry_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

func openScope(t *testing.T, path, scope string) *registry.Registry {
	t.Helper()
	reg, err := registry.Open(path, registry.Options{Scope: scope})
	require.NoError(t, err)
	return reg
}

func TestScopesKeepNamesApart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	main, a, b := openScope(t, path, ""), openScope(t, path, "feature-a"), openScope(t, path, "feature-b")
	ports := map[int]string{}
	for name, reg := range map[string]*registry.Registry{"main": main, "a": a, "b": b} {
		p, err := reg.ForwardPort(ctx, "web", 3000)
		require.NoError(t, err)
		assert.NotContains(t, ports, p, "%s got %s's port", name, ports[p])
		ports[p] = name
		again, err := reg.ForwardPort(ctx, "web", 0)
		require.NoError(t, err)
		assert.Equal(t, p, again, "%s: stable within its scope", name)
	}
	got, err := a.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, "web", got.ID)
	assert.Equal(t, "feature-a", got.Scope)
	_, err = a.Lookup(ctx, "api")
	assert.ErrorIs(t, err, registry.ErrNotFound)

	require.NoError(t, a.Bind(ctx, "api", 18111))
	res, errs := b.ForwardEach(ctx, []registry.ForwardRequest{{ID: "web"}, {ID: "api", Suggested: 18111}})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.NotEqual(t, 18111, res[1].Port, "feature-a's api holds 18111")
	assert.True(t, res[0].Known)

	list, err := main.List(ctx)
	require.NoError(t, err)
	var seen []string
	for _, x := range list {
		seen = append(seen, x.Scope+"/"+x.ID)
	}
	assert.ElementsMatch(t, []string{"/web", "feature-a/web", "feature-a/api", "feature-b/web", "feature-b/api"}, seen)

	gone, err := main.ReleaseScope(ctx, "feature-a")
	require.NoError(t, err)
	require.Len(t, gone, 2)
	assert.Equal(t, []string{"api", "web"}, []string{gone[0].ID, gone[1].ID})
	_, err = a.Lookup(ctx, "web")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	_, err = b.Lookup(ctx, "web")
	assert.NoError(t, err, "another scope is untouched")
	_, err = main.Lookup(ctx, "web")
	assert.NoError(t, err, "the unscoped name is untouched")
	rel, errs := b.ReleaseEach(ctx, []string{"web", "nosuch"})
	assert.NoError(t, errs[0])
	assert.Equal(t, "feature-b", rel[0].Scope)
	assert.ErrorIs(t, errs[1], registry.ErrNotFound)
}

func TestValidateScope(t *testing.T) {
	for _, s := range []string{"feature-x", "wt-3fa2c1d9", "a/b", "É"} {
		assert.NoError(t, registry.ValidateScope(s), s)
	}
	for _, s := range []string{"", "lease", "a:b", "a b", "-x", string(make([]byte, 101))} {
		assert.ErrorIs(t, registry.ValidateScope(s), registry.ErrInvalidScope, "%q", s)
	}
	_, err := registry.Open(filepath.Join(t.TempDir(), "r.db"), registry.Options{Scope: "lease"})
	assert.ErrorIs(t, err, registry.ErrInvalidScope)
}

// TestPruneFreesScopesWhoseDirectoryIsGone: names asked for in a directory
// that is then removed (a git worktree after 'git worktree remove') are
// freed by Prune, and noted by Doctor until then.
func TestPruneFreesScopesWhoseDirectoryIsGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	wt := filepath.Join(t.TempDir(), "worktree")
	require.NoError(t, os.MkdirAll(filepath.Join(wt, "sub"), 0o755))
	t.Chdir(filepath.Join(wt, "sub"))
	gone, kept := openScope(t, path, "gone"), openScope(t, path, "kept")
	_, err := gone.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	_, err = gone.ForwardPort(ctx, "db", 0)
	require.NoError(t, err)
	t.Chdir(t.TempDir())
	_, err = kept.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)

	scopes, err := kept.GoneScopes(ctx)
	require.NoError(t, err)
	assert.Empty(t, scopes)
	require.NoError(t, os.RemoveAll(wt))
	scopes, err = kept.GoneScopes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"gone"}, scopes)

	rep, err := kept.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.Problems(), "a gone scope is a note, not a problem")
	assert.Contains(t, rep.Findings, registry.Finding{Severity: registry.SeverityNote,
		Text: `scope "gone": its directory is gone; its 2 names hold ports until 'portfor prune' frees them`})

	freed, err := kept.Prune(ctx)
	require.NoError(t, err)
	require.Len(t, freed, 2)
	assert.Equal(t, "gone", freed[0].Scope)
	_, err = gone.Lookup(ctx, "web")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	_, err = kept.Lookup(ctx, "web")
	assert.NoError(t, err)
	freed, err = kept.Prune(ctx)
	require.NoError(t, err)
	assert.Empty(t, freed, "nothing left to prune")
}
