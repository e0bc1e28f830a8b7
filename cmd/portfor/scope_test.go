package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inDir runs the CLI in dir, with PORTFOR_DB=db and extra environment.
func inDir(t *testing.T, dir, db string, env []string, args ...string) outcome {
	t.Helper()
	cmd := command(t, db, args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return outcome{stdout.String(), stderr.String(), code}
}

// gitRepo makes a repository with one commit and linked worktrees of the
// given names, and returns the main worktree and the linked ones.
func gitRepo(t *testing.T, worktrees ...string) (string, []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git here")
	}
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	base := t.TempDir()
	root := filepath.Join(base, "app")
	require.NoError(t, os.Mkdir(root, 0o755))
	git(root, "init", "-q")
	git(root, "commit", "-q", "--allow-empty", "-m", "first")
	var wts []string
	for _, w := range worktrees {
		dir := filepath.Join(base, "app-"+w)
		git(root, "worktree", "add", "-q", "-b", w, dir)
		wts = append(wts, dir)
	}
	return root, wts
}

// TestScopesPerWorktree: two real worktrees and the main checkout each get
// their own "web", and the worktrees' names go with them.
func TestScopesPerWorktree(t *testing.T) {
	root, wts := gitRepo(t, "feature-x", "feature-y")
	db := newDB(t)
	auto := []string{"PORTFOR_SCOPE=auto"}

	main := inDir(t, root, db, auto, "web", "18300")
	require.Equal(t, 0, main.code, main.stderr)
	x := inDir(t, wts[0], db, nil, "--scope", "auto", "web", "18300")
	require.Equal(t, 0, x.code, x.stderr)
	y := inDir(t, filepath.Join(wts[1]), db, auto, "web", "18300")
	require.Equal(t, 0, y.code, y.stderr)
	assert.Len(t, map[string]bool{main.stdout: true, x.stdout: true, y.stdout: true}, 3, "three scopes, three ports: %q %q %q", main.stdout, x.stdout, y.stdout)
	assert.Equal(t, x, inDir(t, wts[0], db, auto, "web"), "the same port again in the same worktree")
	assert.Equal(t, main.stdout, inDir(t, root, db, nil, "get", "web").stdout, "the main worktree's names are the global ones")

	// list shows every scope; --scope narrows it; --json carries it.
	o := inDir(t, root, db, nil, "list")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Regexp(t, `(?m)^web +- +`, o.stdout)
	assert.Regexp(t, `(?m)^web +app-feature-x-[0-9a-f]{8} +`, o.stdout)
	assert.Regexp(t, `(?m)^web +app-feature-y-[0-9a-f]{8} +`, o.stdout)
	o = inDir(t, wts[0], db, auto, "list", "--json")
	require.Equal(t, 0, o.code, o.stderr)
	var entries []listEntry
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &entries))
	require.Len(t, entries, 1)
	assert.Regexp(t, `^app-feature-x-[0-9a-f]{8}$`, entries[0].Scope)
	xScope := entries[0].Scope

	// A whole scope is released at once, and printed.
	require.Equal(t, 0, inDir(t, wts[0], db, auto, "api").code)
	o = inDir(t, root, db, nil, "release", "--scope", xScope)
	assert.Equal(t, 0, o.code, o.stderr)
	assert.Equal(t, []string{xScope + " api", xScope + " web"}, fieldsWithoutPorts(o.stdout))
	assert.Equal(t, 1, inDir(t, wts[0], db, auto, "get", "web").code)

	// After 'git worktree remove', doctor notes the scope and prune frees it.
	cmd := exec.Command("git", "worktree", "remove", wts[1])
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	o = inDir(t, root, db, nil, "doctor")
	assert.Equal(t, 0, o.code, o.stdout+o.stderr)
	assert.Regexp(t, `scope "app-feature-y-[0-9a-f]{8}": its directory is gone`, o.stdout)
	o = inDir(t, root, db, nil, "prune")
	assert.Equal(t, 0, o.code, o.stderr)
	assert.Regexp(t, `^app-feature-y-[0-9a-f]{8} web \d+\n$`, o.stdout)
	assert.Equal(t, outcome{"", "", 0}, inDir(t, root, db, nil, "prune"), "nothing left")
	assert.Equal(t, main.stdout, inDir(t, root, db, nil, "web").stdout, "the global web stays")
}

func fieldsWithoutPorts(s string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out
}

func TestScopeUsageErrors(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "--scope", "lease", "web")
	assert.Equal(t, 2, o.code)
	assert.Contains(t, o.stderr, `--scope: invalid scope "lease": "lease" names the registry's leases`)
	o = portfor(t, db, "--scope", "a:b", "list")
	assert.Equal(t, 2, o.code)
	o = portfor(t, db, "--scope", "auto", "release") // outside git: no scope to release
	assert.Equal(t, 2, o.code)
	assert.Contains(t, o.stderr, "in no worktree scope")
}

// TestEnvInAScope: env without names prints the scope's names only, and
// --compose names the scope's Compose project.
func TestEnvInAScope(t *testing.T) {
	root, wts := gitRepo(t, "Feature.X")
	db := newDB(t)
	auto := []string{"PORTFOR_SCOPE=auto"}
	require.Equal(t, 0, inDir(t, root, db, auto, "forward", "global").code)
	require.Equal(t, 0, inDir(t, wts[0], db, auto, "forward", "web=18400", "api=18410").code)
	o := inDir(t, wts[0], db, auto, "env", "--compose")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Regexp(t, `^API_PORT=18410\nWEB_PORT=18400\nCOMPOSE_PROJECT_NAME=app-feature-x-[0-9a-f]{8}-[0-9a-f]{8}\n$`, o.stdout)
	o = inDir(t, root, db, auto, "env", "--compose")
	assert.Equal(t, "GLOBAL_PORT="+strings.TrimSpace(inDir(t, root, db, nil, "get", "global").stdout)+"\n", o.stdout, "the main worktree: its names, no project")
	o = inDir(t, wts[0], db, auto, "env", "--compose", "--format", "json", "web")
	assert.Regexp(t, `^\{\n  "WEB_PORT": 18400,\n  "COMPOSE_PROJECT_NAME": "app-feature-x-[0-9a-f]{8}-[0-9a-f]{8}"\n\}\n$`, o.stdout)
}
