package registry

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portfor/portfor/internal/safefile"
)

// Worktree is the git worktree a directory is in, as `--scope auto` sees
// it.
type Worktree struct {
	// Scope is a linked worktree's scope: its name followed by a hash of
	// its administrative directory, e.g. "feature-x-3fa2c1d9". It is ""
	// for the main worktree, a submodule of it, or a directory outside git:
	// names are global there.
	Scope string
	// Admin is the linked worktree's administrative directory
	// (<repository>/.git/worktrees/<name>), with symbolic links resolved:
	// `git worktree move` keeps it, `git worktree remove` deletes it.
	// Record it as Options.ScopeDir, so that Prune frees the scope's names
	// exactly when the worktree is removed.
	Admin string
}

// FindWorktree returns the git worktree that dir is in. Two worktrees never
// get one scope, even with the same name in two repositories: their
// administrative directories differ. A submodule checked out inside a
// linked worktree belongs to that worktree's scope.
//
// It reads the .git entry of dir or of the nearest directory above it that
// has one (at most 4 KiB of it), and never runs git: a linked worktree's
// .git is a file "gitdir: <repository>/.git/worktrees/<name>".
func FindWorktree(dir string) (Worktree, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Worktree{}, fmt.Errorf("worktree scope: %w", err)
	}
	for {
		dotgit := filepath.Join(dir, ".git")
		fi, err := os.Lstat(dotgit)
		switch {
		case err == nil && fi.IsDir():
			return Worktree{}, nil // the main worktree
		case err == nil && fi.Mode().IsRegular():
			return worktreeFromGitFile(dir, dotgit)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return Worktree{}, fmt.Errorf("worktree scope: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return Worktree{}, nil // not in git
		}
		dir = parent
	}
}

// WorktreeScope returns [FindWorktree]'s Scope for dir.
func WorktreeScope(dir string) (string, error) {
	w, err := FindWorktree(dir)
	return w.Scope, err
}

// worktreeFromGitFile reads a .git file of the worktree at dir.
func worktreeFromGitFile(dir, dotgit string) (Worktree, error) {
	b, err := readSmall(dotgit, 4096)
	if err != nil {
		return Worktree{}, fmt.Errorf("worktree scope: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "gitdir:")
	if !ok {
		return Worktree{}, fmt.Errorf("worktree scope: %s: not a gitdir file", dotgit)
	}
	gitdir = strings.TrimSpace(gitdir)
	if !filepath.IsAbs(gitdir) {
		gitdir = filepath.Join(dir, gitdir)
	}
	// One directory, one hash, whichever path led here (a relative gitdir
	// followed through a symbolic link would differ).
	if real, err := filepath.EvalSymlinks(gitdir); err == nil {
		gitdir = real
	}
	gitdir = filepath.Clean(gitdir)
	// <repo>/.git/worktrees/<name> for a linked worktree, and
	// <repo>/.git/worktrees/<name>/modules/... for a submodule inside one.
	for p := gitdir; ; p = filepath.Dir(p) {
		if filepath.Base(filepath.Dir(p)) == "worktrees" {
			h := fnv.New32a()
			h.Write([]byte(p))
			return Worktree{Scope: fmt.Sprintf("%s-%08x", scopeWord(filepath.Base(p)), h.Sum32()), Admin: p}, nil
		}
		if filepath.Dir(p) == p {
			return Worktree{}, nil // a submodule of the main worktree
		}
	}
}

// scopeWord makes a worktree's name fit a scope: characters a scope may not
// hold (':', white space, unprintable ones) become '-', and it is cut, at a
// character boundary, to leave room for the hash.
func scopeWord(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == ':' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			r = '-'
		}
		if b.Len()+utf8.RuneLen(r) > MaxScopeLen-9 {
			break
		}
		b.WriteRune(r)
	}
	s := strings.TrimLeft(b.String(), "-")
	if s == "" {
		s = "worktree"
	}
	return s
}

// readSmall reads at most limit bytes of the file at path: git's small
// files (.git, gitdir), which a hostile worktree could make endless. It
// opens them as safefile does: a FIFO, or a link to one or to a terminal,
// in their place would make a plain open wait for ever (a gitdir is named
// by a name's Dir, which any member of a shared registry may write).
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := safefile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
