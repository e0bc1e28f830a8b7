//go:build unix

package safefile

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is a directory opened without following a link, and every operation
// on it works relative to its descriptor: a link swapped in for the
// directory after it was opened redirects nothing. Names are single path
// elements; Dir refuses a name that is not.
type Dir struct {
	path string
	fd   int
}

// OpenDir opens the directory at path, refusing a symbolic link (or
// anything else) in its place.
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotDir}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{path: path, fd: fd}, nil
}

// MkdirGroup makes the directory path with exactly perm. When group is not
// -1 the directory is given to that group and its setgid bit set, so that
// what any member creates in it belongs to the group too.
func MkdirGroup(path string, perm os.FileMode, group int) error {
	err := unix.Mkdir(path, uint32(perm.Perm()))
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	d, err := OpenDir(path)
	if err != nil {
		return err
	}
	defer d.Close()
	mode := uint32(perm.Perm())
	if group >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(d.fd, &st); err == nil && int(st.Gid) != group {
			if err := unix.Fchown(d.fd, -1, group); err != nil {
				return &os.PathError{Op: "chown", Path: path, Err: err}
			}
		}
		mode |= unix.S_ISGID
	}
	if err := unix.Fchmod(d.fd, mode); err != nil { // exactly, whatever the umask
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// Owner returns the directory's mode and its owner's uid and gid.
func (d *Dir) Owner() (mode os.FileMode, uid, gid int, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return 0, 0, 0, &os.PathError{Op: "stat", Path: d.path, Err: err}
	}
	return fileMode(uint32(st.Mode)), int(st.Uid), int(st.Gid), nil
}

func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFREG:
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	default:
		mode |= os.ModeIrregular
	}
	return mode
}

// Names lists the directory.
func (d *Dir) Names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.Readdirnames(-1)
}

// Create makes the new regular file name holding b, with exactly perm.
func (d *Dir) Create(name string, perm os.FileMode, b []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	return fill(os.NewFile(uintptr(fd), name), perm, b)
}

// Rename renames from to to, both in d.
func (d *Dir) Rename(from, to string) error {
	if err := errors.Join(checkName(from), checkName(to)); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &os.PathError{Op: "rename", Path: from, Err: err}
	}
	return nil
}

// Remove removes the file name, or an empty directory put under a file's
// name.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := unix.Unlinkat(d.fd, name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		// A directory someone made under a file's name: removed if empty.
		if derr := unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR); derr == nil || !errors.Is(derr, unix.ENOTDIR) {
			err = derr
		}
	}
	if err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// ReadFile returns the content of the regular file name, at most limit
// bytes, and the uid owning it. It never follows a link or blocks on a
// FIFO; anything but a regular file of at most limit bytes is an error
// wrapping ErrNotRegular.
func (d *Dir) ReadFile(name string, limit int) ([]byte, int, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, 0, &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (is a link)", ErrNotRegular)}
	}
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	b, err := readAtMost(f, name, limit)
	if err != nil {
		return nil, 0, err
	}
	return b, int(st.Uid), nil
}

// Age returns how long ago name last changed.
func (d *Dir) Age(name string) (time.Duration, bool) {
	var st unix.Stat_t
	if checkName(name) != nil || unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return 0, false
	}
	sec, nsec := st.Mtim.Unix()
	return time.Since(time.Unix(sec, nsec)), true
}

// UID returns the uid owning name, without following a link.
func (d *Dir) UID(name string) (int, bool) {
	var st unix.Stat_t
	if checkName(name) != nil || unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return 0, false
	}
	return int(st.Uid), true
}
