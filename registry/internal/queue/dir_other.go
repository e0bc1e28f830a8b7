//go:build !unix

package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// dir is the pending directory. Without openat(2) every operation goes by
// path, after the directory itself was checked not to be a link.
type dir struct {
	path string
}

func (q *Queue) openDir(create bool) (*dir, error) {
	if create {
		if err := os.Mkdir(q.cfg.Dir, q.cfg.DirPerm); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	fi, err := os.Lstat(q.cfg.Dir)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is not a directory (a link)", q.cfg.Dir)
	}
	if err := q.checkDir(fi.Mode(), -1, -1); err != nil {
		return nil, err
	}
	return &dir{path: q.cfg.Dir}, nil
}

func (d *dir) close() {}

func (d *dir) names() ([]string, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d *dir) create(name string, perm os.FileMode, b []byte) error {
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *dir) rename(from, to string) error {
	return os.Rename(filepath.Join(d.path, from), filepath.Join(d.path, to))
}

func (d *dir) remove(name string) error { return os.Remove(filepath.Join(d.path, name)) }

func (d *dir) read(name string, max int) ([]byte, int, error) {
	path := filepath.Join(d.path, name)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > int64(max) {
		return nil, 0, errNotRegular
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > max {
		return nil, 0, errNotRegular
	}
	return b, -1, nil
}

func (d *dir) age(name string) (time.Duration, bool) {
	fi, err := os.Lstat(filepath.Join(d.path, name))
	if err != nil {
		return 0, false
	}
	return time.Since(fi.ModTime()), true
}
