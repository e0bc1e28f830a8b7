package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNotDir is returned by [OpenDir] for a path that holds something
// other than a directory: a symbolic link (even to a directory) or a file.
var ErrNotDir = errors.New("not a directory (a link or a file)")

// errName is returned for a name that is not a single path element.
var errName = errors.New("not a plain file name")

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("%q: %w", name, errName)
	}
	return nil
}

// readAtMost reads all of f, which may hold at most limit bytes: a longer
// file is not one the caller made, and is an error wrapping ErrNotRegular.
func readAtMost(f *os.File, name string, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, &os.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w (longer than %d bytes)", ErrNotRegular, limit)}
	}
	return b, nil
}

// fill gives the new file f exactly perm (whatever the umask), writes b to
// it and closes it.
func fill(f *os.File, perm os.FileMode, b []byte) error {
	err := f.Chmod(perm.Perm())
	if err == nil {
		_, err = f.Write(b)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
