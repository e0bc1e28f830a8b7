//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeBlock returns the first ```sh block after heading in README.md.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "README has no %q", heading)
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	require.GreaterOrEqual(t, start, 0)
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "```")
	require.GreaterOrEqual(t, end, 0)
	return s[:end]
}

// TestReadmeSeveralCopiesOfOneApp runs the README's worktree walk-through as
// written, with a portfor built from this package on PATH, in a fresh git
// repository.
func TestReadmeSeveralCopiesOfOneApp(t *testing.T) {
	for _, tool := range []string{"git", "bash", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here", tool)
		}
	}
	block := readmeBlock(t, "## Several copies of one app")
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "portfor"), ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	base := t.TempDir()
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PORTFOR_DB="+filepath.Join(base, "state", "registry.db"), "HOME="+base, "PORTFOR_SCOPE=",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null")
	git := exec.Command("sh", "-c", "mkdir app && cd app && git init -q && git commit -q --allow-empty -m first")
	git.Dir, git.Env = base, env
	out, err = git.CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", block)
	cmd.Dir, cmd.Env = base, env
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "the README's commands failed:\n%s", out)
	text := string(out)
	assert.Regexp(t, `(?m)^web on \d+, api on \d+$`, text)
	assert.Regexp(t, `(?m)^vite --port \d+$`, text)
	assert.Regexp(t, `(?m)^bound before start: \('127\.0\.0\.1', \d+\)$`, text)
	assert.Regexp(t, `(?m)^app-feature-x-[0-9a-f]{8} api \d+$`, text, "prune printed what it freed")
	assert.Regexp(t, `(?m)^app-feature-x-[0-9a-f]{8} web \d+$`, text)
	assert.Regexp(t, `(?m)^web +app-feature-x-[0-9a-f]{8} +\d+ +stable `, text, "list shows the worktree's scope")
	assert.NotRegexp(t, `(?m)^web +- +`, text, "and only that scope")
}
