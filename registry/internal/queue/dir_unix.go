//go:build unix

package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// dir is the pending directory, open: every operation is relative to its
// descriptor, so a link swapped in for the directory after it was checked
// redirects nothing.
type dir struct {
	fd int
}

// openDir opens and checks the directory, creating it first when create is
// set and it is missing.
func (q *Queue) openDir(create bool) (*dir, error) {
	if create {
		if err := q.mkdir(); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Open(q.cfg.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%s is not a directory (a link or a file)", q.cfg.Dir)
		}
		return nil, &os.PathError{Op: "open", Path: q.cfg.Dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: q.cfg.Dir, Err: err}
	}
	if err := q.checkDir(fileMode(uint32(st.Mode)), int(st.Uid), int(st.Gid)); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &dir{fd: fd}, nil
}

// mkdir makes the directory with exactly the configured permissions. In a
// shared queue it keeps (or sets) the shared group and the setgid bit, so
// that the files every member creates in it belong to that group.
func (q *Queue) mkdir() error {
	err := unix.Mkdir(q.cfg.Dir, uint32(q.cfg.DirPerm.Perm()))
	if errors.Is(err, unix.EEXIST) {
		return nil // openDir checks what is there
	}
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: q.cfg.Dir, Err: err}
	}
	fd, err := unix.Open(q.cfg.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: q.cfg.Dir, Err: err}
	}
	defer unix.Close(fd)
	mode := uint32(q.cfg.DirPerm.Perm())
	if q.cfg.Group >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil && int(st.Gid) != q.cfg.Group {
			if err := unix.Fchown(fd, -1, q.cfg.Group); err != nil {
				return &os.PathError{Op: "chown", Path: q.cfg.Dir, Err: err}
			}
		}
		mode |= unix.S_ISGID
	}
	if err := unix.Fchmod(fd, mode); err != nil { // exactly, whatever the umask
		return &os.PathError{Op: "chmod", Path: q.cfg.Dir, Err: err}
	}
	return nil
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

func (d *dir) close() { unix.Close(d.fd) }

// names lists the directory.
func (d *dir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// create makes the new file name holding b, with exactly perm.
func (d *dir) create(name string, perm os.FileMode, b []byte) error {
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	err = f.Chmod(perm.Perm()) // exactly, whatever the umask
	if err == nil {
		_, err = f.Write(b)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *dir) rename(from, to string) error {
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &os.PathError{Op: "rename", Path: from, Err: err}
	}
	return nil
}

func (d *dir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// read returns the content of the regular file name (at most max bytes:
// a longer one is errNotRegular too, since the queue never makes one) and
// the uid owning it. It never follows a link or blocks on a FIFO.
func (d *dir) read(name string, max int) ([]byte, int, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, 0, errNotRegular
	}
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, err
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG || st.Size > int64(max) {
		return nil, 0, errNotRegular
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > max {
		return nil, 0, errNotRegular
	}
	return b, int(st.Uid), nil
}

// age returns how long ago name last changed.
func (d *dir) age(name string) (time.Duration, bool) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, false
	}
	sec, nsec := st.Mtim.Unix()
	return time.Since(time.Unix(sec, nsec)), true
}
