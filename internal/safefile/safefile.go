// Package safefile opens the small files portfor keeps beside a registry
// (requests, answers) so that a file another user put in their place
// cannot make portfor block, read without end, or write through a link:
// it never follows a final symbolic link, never blocks opening a FIFO, and
// insists on a regular file.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotRegular is returned for a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path with flag (O_CREATE and the like allowed) and perm,
// refusing a symbolic link in its place, and returns it only if it is a
// regular file.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|extraFlags, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, fi.Mode().Type())}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := clearNonblock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads at most max bytes of the regular file at path; a longer
// file is an error.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("longer than %d bytes", max)}
	}
	return b, nil
}

// Create makes a new regular file at path with exactly perm, removing
// whatever was there first (a link someone put there is removed, not
// followed).
func Create(path string, perm os.FileMode) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := Open(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil { // exactly, whatever the umask
		f.Close()
		return nil, err
	}
	return f, nil
}
