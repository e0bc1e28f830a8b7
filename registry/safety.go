package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/portfor/portfor/internal/safefile"
)

// ErrUnsafePath is returned (in an [*UnsafePathError]) by [Open] for a
// registry path that another user could control.
var ErrUnsafePath = errors.New("unsafe registry path")

// UnsafePathError says why a registry path was refused.
type UnsafePathError struct {
	Path   string
	Reason string
}

// Error returns e.g. "unsafe registry path /tmp/r.db: owned by uid 1001 in
// world-writable directory /tmp".
func (e *UnsafePathError) Error() string {
	return fmt.Sprintf("unsafe registry path %s: %s", e.Path, e.Reason)
}

// Unwrap returns ErrUnsafePath.
func (e *UnsafePathError) Unwrap() error { return ErrUnsafePath }

// sharing reports whether the registry's directory is meant for a group:
// writable by its group and not by everyone (a world-writable directory
// such as /tmp is not a group's). Files are then 0660 and directories 0770
// (docs/design.md, "Paths and permissions").
func (r *Registry) sharing() bool {
	fi, err := os.Stat(filepath.Dir(r.path))
	return err == nil && fi.Mode().Perm()&0o020 != 0 && fi.Mode().Perm()&0o002 == 0
}

// sharedGroup is the group of the registry's directory: in a shared
// registry, the group whose members share it (-1 where unknown).
func (r *Registry) sharedGroup() int {
	fi, err := os.Stat(filepath.Dir(r.path))
	if err != nil {
		return -1
	}
	if _, gid, ok := safefile.Owner(fi); ok {
		return gid
	}
	return -1
}

// filePerm and dirPerm are the permissions of what portfor creates.
func (r *Registry) filePerm() os.FileMode {
	if r.shared {
		return 0o660
	}
	return 0o600
}

func (r *Registry) dirPerm() os.FileMode {
	if r.shared {
		return 0o770
	}
	return 0o700
}

// checkPath refuses registry and lock paths another user could control:
// a symbolic link owned by someone else or pointing at someone else's
// file, a file owned by someone else in a directory everyone may write to
// (they could have put it there for us to write to), or a directory that
// everyone may write to without the sticky bit (anyone could replace our
// files). It returns the path to use: a symbolic link of the user's own,
// to a file of the user's own, is followed, as portfor opens its files
// without following links.
func checkPath(path string) (string, error) { return checkPathDepth(path, 0) }

func checkPathDepth(path string, depth int) (string, error) {
	me := os.Geteuid()
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, checkDir(path, me)
	}
	if err != nil {
		return "", fmt.Errorf("open registry %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if uid, _, ok := safefile.Owner(fi); ok && uid != me {
			return "", &UnsafePathError{Path: path, Reason: fmt.Sprintf("a symbolic link owned by uid %d", uid)}
		}
		target, err := os.Readlink(path)
		if err != nil || depth >= 8 {
			return "", &UnsafePathError{Path: path, Reason: fmt.Sprintf("a symbolic link that cannot be followed (%v)", err)}
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		if tfi, err := os.Stat(target); err == nil {
			if uid, _, ok := safefile.Owner(tfi); ok && uid != me {
				return "", &UnsafePathError{Path: path, Reason: fmt.Sprintf("a symbolic link to %s, owned by uid %d", target, uid)}
			}
		}
		return checkPathDepth(target, depth+1)
	}
	if err := checkDir(path, me); err != nil {
		return "", err
	}
	// A second hard link is a second path, hence a second lock file, lease
	// file and pending directory, over one registry: processes coming
	// through the two paths would not exclude each other, and leases made
	// through one would not see those made through the other (measured:
	// 3 ports leased twice in 640, docs/reliability.md).
	if n, ok := safefile.Links(fi); ok && n > 1 && fi.Mode().IsRegular() {
		return "", &UnsafePathError{Path: path, Reason: fmt.Sprintf("has %d hard links: every process must reach a registry through one path, which owns its lock", n)}
	}
	dfi, err := os.Stat(filepath.Dir(path))
	if err == nil && dfi.Mode().Perm()&0o002 != 0 {
		if uid, _, ok := safefile.Owner(fi); ok && uid != me {
			return "", &UnsafePathError{Path: path, Reason: fmt.Sprintf("owned by uid %d in world-writable directory %s", uid, filepath.Dir(path))}
		}
	}
	return path, nil
}

// checkDir refuses a directory everyone may write to without the sticky
// bit, which stops them from removing or renaming others' files.
func checkDir(path string, me int) error {
	dir := filepath.Dir(path)
	dfi, err := os.Stat(dir)
	if err != nil {
		return nil // created later, by us
	}
	m := dfi.Mode()
	if m.Perm()&0o002 != 0 && m&fs.ModeSticky == 0 {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("directory %s is writable by everyone and not sticky: anyone could replace the registry", dir)}
	}
	// A directory of another user's (not root's) is theirs to change under
	// us, unless it is a shared one: writable by its group, not by everyone.
	if uid, _, ok := safefile.Owner(dfi); ok && uid != me && uid != 0 && m.Perm()&0o002 == 0 && m.Perm()&0o020 == 0 {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("directory %s belongs to uid %d", dir, uid)}
	}
	return nil
}
