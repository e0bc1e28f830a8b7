package registry_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

// fakeWorktree makes <base>/repo/.git/worktrees/<name> and a worktree dir
// whose .git file points there (as `git worktree add` writes it), and
// returns the worktree dir.
func fakeWorktree(t *testing.T, base, name, gitdirLine string) string {
	t.Helper()
	admin := filepath.Join(base, "repo", ".git", "worktrees", name)
	require.NoError(t, os.MkdirAll(admin, 0o755))
	wt := filepath.Join(base, "wt")
	require.NoError(t, os.MkdirAll(wt, 0o755))
	if gitdirLine == "" {
		gitdirLine = "gitdir: " + admin
	}
	require.NoError(t, os.WriteFile(filepath.Join(wt, ".git"), []byte(gitdirLine+"\n"), 0o644))
	return wt
}

// `--scope auto` must give a valid scope in every linked worktree git
// accepts: a long multi-byte name is cut at a character boundary (46 x "é"
// once gave "not valid UTF-8"), and U+200B, U+00A0 become '-'.
func TestWorktreeScopeIsValidForNamesGitAccepts(t *testing.T) {
	for _, name := range []string{strings.Repeat("é", 46), strings.Repeat("功", 31), "a\u200bb", "a\u00a0b", "a\u2028b", "a\xffb"} {
		t.Run(name, func(t *testing.T) {
			wt := fakeWorktree(t, t.TempDir(), name, "")
			s, err := registry.WorktreeScope(wt)
			require.NoError(t, err)
			require.NotEmpty(t, s)
			assert.NoError(t, registry.ValidateScope(s), "WorktreeScope returned a scope Open refuses")
		})
	}
}

// One worktree is one scope whichever path leads to it, with a relative
// gitdir (git >= 2.48 with worktree.useRelativePaths) reached through a
// symbolic link too: the hash is of the administrative directory itself.
func TestRelativeGitdirThroughSymlinkIsOneScope(t *testing.T) {
	base := t.TempDir()
	wt := fakeWorktree(t, base, "feat", "gitdir: ../repo/.git/worktrees/feat")
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(base, link))
	real, err := registry.WorktreeScope(wt)
	require.NoError(t, err)
	viaLink, err := registry.WorktreeScope(filepath.Join(link, "wt"))
	require.NoError(t, err)
	assert.Equal(t, real, viaLink, "one worktree, two scopes")
}

// A submodule checked out inside a linked worktree (.git file
// "gitdir: <repo>/.git/worktrees/feat/modules/sub") belongs to that
// worktree's scope: two worktrees' copies of it must not share "web".
func TestSubmoduleInsideLinkedWorktreeKeepsTheWorktreesScope(t *testing.T) {
	base := t.TempDir()
	wt := fakeWorktree(t, base, "feat", "")
	admin := filepath.Join(base, "repo", ".git", "worktrees", "feat", "modules", "sub")
	require.NoError(t, os.MkdirAll(admin, 0o755))
	sub := filepath.Join(wt, "sub")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, ".git"), []byte("gitdir: "+admin+"\n"), 0o644))
	s, err := registry.WorktreeScope(sub)
	require.NoError(t, err)
	assert.NotEmpty(t, s, "a submodule of linked worktree feat is in the main worktree's (global) names")
}

func runGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
}

// Prune keeps a live worktree's names: after `git worktree move` (same
// administrative directory, same scope) and after the subdirectory a name
// was first asked from is removed. The scope's directory is the worktree's
// administrative directory (Options.ScopeDir, as --scope auto opens it).
func TestPruneKeepsLiveWorktrees(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git here")
	}
	for _, c := range []string{"moved", "subdir removed"} {
		t.Run(c, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "app")
			require.NoError(t, os.Mkdir(root, 0o755))
			runGit(t, root, "init", "-q")
			runGit(t, root, "commit", "-q", "--allow-empty", "-m", "first")
			wt := filepath.Join(base, "app-feat")
			runGit(t, root, "worktree", "add", "-q", wt)
			path := filepath.Join(base, "registry.db")
			from := wt
			if c == "subdir removed" {
				from = filepath.Join(wt, "build")
				require.NoError(t, os.Mkdir(from, 0o755))
			}
			t.Chdir(from)
			w, err := registry.FindWorktree(from)
			require.NoError(t, err)
			scope := w.Scope
			require.NotEmpty(t, scope)
			reg, err := registry.Open(path, registry.Options{Scope: w.Scope, ScopeDir: w.Admin}) // as --scope auto opens it
			require.NoError(t, err)
			_, err = reg.ForwardPort(ctx, "web", 0)
			require.NoError(t, err)
			t.Chdir(base)
			live := wt
			if c == "moved" {
				live = filepath.Join(base, "app-feat2")
				runGit(t, root, "worktree", "move", wt, live)
			} else {
				require.NoError(t, os.Remove(from))
			}
			now, err := registry.WorktreeScope(live)
			require.NoError(t, err)
			require.Equal(t, scope, now, "the worktree still has this scope")
			freed, err := openScope(t, path, "").Prune(ctx)
			require.NoError(t, err)
			assert.Empty(t, freed, "prune freed the names of a live worktree at %s", live)
		})
	}
}

// A port-for config whose value continues over many lines makes a short
// error, not one "line" of megabytes on stderr (quoteLine cuts at 64 bytes).
func TestPortForConfigErrorIsShort(t *testing.T) {
	src := "[DEFAULT]\nweb = 1\n" + strings.Repeat("  1\n", 100000)
	_, err := registry.ParsePortForConfig(strings.NewReader(src))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 1000, "error of %d bytes", len(err.Error()))
}
