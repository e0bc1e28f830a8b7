// Package safefile opens the files portfor keeps on disk (the registry, its
// lock file, requests and answers) so that a file another user put in their
// place cannot make portfor block, read without end, or write through a
// link: it never follows a final symbolic link, never blocks opening a
// FIFO, insists on a regular file, and gives a file it creates exactly the
// permissions asked for, whatever the umask.
//
// It is the one place these rules are written down: package store, package
// lock and package registry open their files through [Open].
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is returned (inside an [*os.PathError]) for a path that
// holds something other than a regular file: a directory, FIFO, socket or
// device.
var ErrNotRegular = errors.New("not a regular file")

// createTries bounds how often Open goes back and forth between "exists"
// and "does not exist" when another process creates and removes the file
// at the same time (or, where links cannot be refused, a dangling link).
const createTries = 3

// Open opens path with flag and perm, refusing a symbolic link in its place
// (on Unix, an error wrapping ELOOP), never blocking on a FIFO, and returns
// the file only if it is a regular file (else an error wrapping
// [ErrNotRegular]). The file is in blocking mode, as os.OpenFile leaves it.
//
// With os.O_CREATE, a file Open creates gets exactly perm, whatever the
// umask; a file that already exists is opened as it is, its mode unchanged.
// With os.O_EXCL too, an existing file is an error wrapping fs.ErrExist.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&os.O_CREATE == 0 || flag&os.O_EXCL != 0 {
		return open(path, flag, perm)
	}
	var err error
	for range createTries {
		var f *os.File
		// Most opens find the file: try that first, so they cost one open.
		if f, err = open(path, flag&^os.O_CREATE, perm); !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		if f, err = open(path, flag|os.O_EXCL, perm); !errors.Is(err, fs.ErrExist) {
			return f, err
		}
		// Created by someone else in between: open theirs.
	}
	return nil, err
}

// open opens path once with the safe flags, checks that it is a regular
// file, sets the mode of a file it created and puts it back in blocking mode.
func open(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|OpenFlags, perm)
	if err != nil {
		return nil, err
	}
	if err := check(f, path, flag, perm); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func check(f *os.File, path string, flag int, perm os.FileMode) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := CheckRegular(path, fi); err != nil {
		return err
	}
	if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL && fi.Mode().Perm() != perm.Perm() {
		if err := f.Chmod(perm); err != nil { // exactly, whatever the umask
			return err
		}
	}
	return clearNonblock(f, flag)
}

// CheckRegular returns nil when fi, the result of a Stat of the file opened
// at path, is a regular file, and otherwise the error [Open] returns for it:
// an [*os.PathError] wrapping [ErrNotRegular] that says what the file is.
func CheckRegular(path string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, describe(fi.Mode()))}
}

// describe names what a non-regular file is, as an error message would.
func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "is a directory"
	case m&fs.ModeNamedPipe != 0:
		return "is a FIFO"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m&fs.ModeDevice != 0:
		return "is a device"
	case m&fs.ModeSymlink != 0:
		return "is a symbolic link"
	}
	return "type " + m.Type().String()
}

// ReadFile reads at most limit bytes of the regular file at path; a longer
// file is an error.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("longer than %d bytes", limit)}
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
	return Open(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}
