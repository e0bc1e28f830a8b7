package dotenv

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/portfor/portfor/internal/safefile"
)

// MaxSize is the largest file [Update] reads: a .env file is small, and
// anything longer is no file it should rewrite.
const MaxSize = 4 << 20

// NewFilePerm is the mode of a file [Update] creates.
const NewFilePerm = 0o644

// ErrUnsafeFile is returned (wrapped, with the reason) for a file [Update]
// refuses to write: one that is not a regular file, or a symbolic link
// owned by another user or pointing at another user's file.
var ErrUnsafeFile = errors.New("refusing to write")

// Update merges vars into the dotenv file at path (see [Merge]) and
// returns the names it changed or added. The file is replaced atomically:
// the new content goes to a temporary file in the same directory, which is
// synced and renamed over the old one, so a crash leaves either the old
// file or the new one. The new file keeps the old one's mode (and, where
// the caller may set them, its owner and group). When nothing changes the
// file is not written at all, so its bytes and modification time stay.
// Updates of files in one directory take turns (an flock on the directory,
// on Unix), so two at once keep each other's variables.
//
// A missing file is created with mode [NewFilePerm]. A symbolic link of the
// caller's own to a file of the caller's own is followed once: the file it
// points at is updated and the link stays. Anything else that is not a
// regular file is refused with an error wrapping [ErrUnsafeFile]. A file
// with other hard links loses them: the rename gives path a new inode.
func Update(path string, vars []Var) ([]string, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, err
	}
	defer lockDir(target)()
	var src []byte
	perm := os.FileMode(NewFilePerm)
	uid, gid, haveOwner := -1, -1, false
	f, err := safefile.Open(target, os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, fmt.Errorf("%w %s: %w", ErrUnsafeFile, path, errors.Unwrap(err))
	case err != nil:
		return nil, err
	default:
		fi, err := f.Stat()
		if err == nil {
			perm = fi.Mode().Perm()
			uid, gid, haveOwner = safefile.Owner(fi)
			if target != path && haveOwner && uid != os.Geteuid() {
				err = fmt.Errorf("%w %s: it is a link to %s, which belongs to uid %d", ErrUnsafeFile, path, target, uid)
			}
		}
		if err == nil {
			src, err = readAll(f, target)
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	out, changed := Merge(src, vars)
	if f != nil && len(changed) == 0 {
		return nil, nil
	}
	if err := replace(target, out, perm, uid, gid, haveOwner); err != nil {
		return nil, err
	}
	return changed, nil
}

// resolve returns the file path names: path itself, or, for a symbolic
// link of the caller's own, where it points.
func resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%w %s: not a regular file", ErrUnsafeFile, path)
		}
		return path, nil
	}
	if uid, _, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
		return "", fmt.Errorf("%w %s: a symbolic link that belongs to uid %d", ErrUnsafeFile, path, uid)
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%w %s: a symbolic link to nothing (%w)", ErrUnsafeFile, path, err)
	}
	ti, err := os.Lstat(target)
	if err != nil {
		return "", err
	}
	if uid, _, ok := safefile.Owner(ti); ok && uid != os.Geteuid() {
		return "", fmt.Errorf("%w %s: it is a link to %s, which belongs to uid %d", ErrUnsafeFile, path, target, uid)
	}
	if !ti.Mode().IsRegular() {
		return "", fmt.Errorf("%w %s: it is a link to %s, not a regular file", ErrUnsafeFile, path, target)
	}
	return target, nil
}

func readAll(f *os.File, path string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err == nil && len(b) > MaxSize {
		err = fmt.Errorf("%w %s: longer than %d bytes", ErrUnsafeFile, path, MaxSize)
	}
	return b, err
}

// replace writes b to a new file beside path and renames it over path.
func replace(path string, b []byte, perm os.FileMode, uid, gid int, setOwner bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".portfor-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if setOwner && (uid != os.Geteuid() || gid != os.Getegid()) {
		_ = tmp.Chown(uid, gid) // where allowed: root, or a group of the caller's
	}
	if err = tmp.Chmod(perm); err != nil { // exactly, whatever the umask
		return err
	}
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable where the system allows a
// directory to be synced; elsewhere the rename is as durable as it gets.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
