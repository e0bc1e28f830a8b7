package registry

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WorktreeScope returns the scope of the git worktree that dir is in, as
// `--scope auto` uses it: for a linked worktree (made by `git worktree
// add`), its name followed by a hash of its administrative directory, e.g.
// "feature-x-3fa2c1d9"; for the main worktree, a directory outside git, or
// a submodule, "" (names are global there). Two worktrees never get one
// scope, even with the same name in two repositories: their administrative
// directories differ.
//
// It reads the .git entry of dir or of the nearest directory above it that
// has one, and never runs git: a linked worktree's .git is a file
// "gitdir: <repository>/.git/worktrees/<name>".
func WorktreeScope(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("worktree scope: %w", err)
	}
	for {
		dotgit := filepath.Join(dir, ".git")
		fi, err := os.Lstat(dotgit)
		switch {
		case err == nil && fi.IsDir():
			return "", nil // the main worktree
		case err == nil && fi.Mode().IsRegular():
			return scopeFromGitFile(dir, dotgit)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("worktree scope: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil // not in git
		}
		dir = parent
	}
}

// scopeFromGitFile reads a .git file of the worktree at dir.
func scopeFromGitFile(dir, dotgit string) (string, error) {
	b, err := os.ReadFile(dotgit)
	if err != nil {
		return "", fmt.Errorf("worktree scope: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "gitdir:")
	if !ok {
		return "", fmt.Errorf("worktree scope: %s: not a gitdir file", dotgit)
	}
	gitdir = strings.TrimSpace(gitdir)
	if !filepath.IsAbs(gitdir) {
		gitdir = filepath.Join(dir, gitdir)
	}
	gitdir = filepath.Clean(gitdir)
	if filepath.Base(filepath.Dir(gitdir)) != "worktrees" {
		return "", nil // a submodule's .git file, not a worktree's
	}
	h := fnv.New32a()
	h.Write([]byte(gitdir))
	return fmt.Sprintf("%s-%08x", scopeWord(filepath.Base(gitdir)), h.Sum32()), nil
}

// scopeWord makes a worktree's name fit a scope: characters a scope may
// not hold become '-', and it is cut to leave room for the hash.
func scopeWord(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == ':' || r <= ' ' || r == 0x7f {
			r = '-'
		}
		b.WriteRune(r)
	}
	s := strings.TrimLeft(b.String(), "-")
	if s == "" {
		s = "worktree"
	}
	if len(s) > MaxScopeLen-9 {
		s = s[:MaxScopeLen-9]
	}
	return s
}
