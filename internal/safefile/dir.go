package safefile

import (
	"errors"
	"fmt"
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
