//go:build !unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Dir is a directory checked not to be a link. Without openat(2) every
// operation goes by path. Names are single path elements; Dir refuses a
// name that is not.
type Dir struct {
	path string
}

// OpenDir opens the directory at path, refusing a symbolic link (or
// anything else) in its place.
func OpenDir(path string) (*Dir, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotDir}
	}
	return &Dir{path: path}, nil
}

// MkdirGroup makes the directory path with perm; groups are a Unix matter.
func MkdirGroup(path string, perm os.FileMode, group int) error {
	return os.Mkdir(path, perm)
}

// Close closes the directory.
func (d *Dir) Close() error { return nil }

// Owner returns the directory's mode; owners are unknown here (-1).
func (d *Dir) Owner() (mode os.FileMode, uid, gid int, err error) {
	fi, err := os.Lstat(d.path)
	if err != nil {
		return 0, 0, 0, err
	}
	return fi.Mode(), -1, -1, nil
}

// Names lists the directory.
func (d *Dir) Names() ([]string, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// Create makes the new regular file name holding b.
func (d *Dir) Create(name string, perm os.FileMode, b []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	return fill(f, perm, b)
}

// Rename renames from to to, both in d.
func (d *Dir) Rename(from, to string) error {
	if err := errors.Join(checkName(from), checkName(to)); err != nil {
		return err
	}
	return os.Rename(filepath.Join(d.path, from), filepath.Join(d.path, to))
}

// Remove removes the file name.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return os.Remove(filepath.Join(d.path, name))
}

// ReadFile returns the content of the regular file name, at most limit
// bytes; owners are unknown here (-1).
func (d *Dir) ReadFile(name string, limit int) ([]byte, int, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	path := filepath.Join(d.path, name)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	b, err := readAtMost(f, name, limit)
	if err != nil {
		return nil, 0, err
	}
	return b, -1, nil
}

// Age returns how long ago name last changed.
func (d *Dir) Age(name string) (time.Duration, bool) {
	if checkName(name) != nil {
		return 0, false
	}
	fi, err := os.Lstat(filepath.Join(d.path, name))
	if err != nil {
		return 0, false
	}
	return time.Since(fi.ModTime()), true
}

// UID returns -1: owners are a Unix matter.
func (d *Dir) UID(string) (int, bool) { return -1, true }
