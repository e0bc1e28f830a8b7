package registry_test

import (
	"os"
	"os/exec"
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

// TestWorktreeScope uses real worktrees: git worktree add, in two
// repositories with worktrees of one name.
func TestWorktreeScope(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git here")
	}
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	var scopes []string
	for _, repo := range []string{"one", "two"} {
		root := filepath.Join(t.TempDir(), repo)
		require.NoError(t, os.MkdirAll(filepath.Join(root, "src"), 0o755))
		git(root, "init", "-q")
		git(root, "commit", "-q", "--allow-empty", "-m", "first")
		wt := filepath.Join(t.TempDir(), "feature-x")
		git(root, "worktree", "add", "-q", wt)

		s, err := registry.WorktreeScope(filepath.Join(root, "src"))
		require.NoError(t, err)
		assert.Empty(t, s, "the main worktree has no scope")
		require.NoError(t, os.MkdirAll(filepath.Join(wt, "deep", "er"), 0o755))
		s, err = registry.WorktreeScope(filepath.Join(wt, "deep", "er"))
		require.NoError(t, err)
		assert.Regexp(t, `^feature-x-[0-9a-f]{8}$`, s)
		assert.NoError(t, registry.ValidateScope(s))
		again, err := registry.WorktreeScope(wt)
		require.NoError(t, err)
		assert.Equal(t, s, again, "one worktree, one scope, from anywhere in it")
		scopes = append(scopes, s)
	}
	assert.NotEqual(t, scopes[0], scopes[1], "two repositories' feature-x worktrees")
	s, err := registry.WorktreeScope(t.TempDir())
	require.NoError(t, err)
	assert.Empty(t, s, "outside git")
}
