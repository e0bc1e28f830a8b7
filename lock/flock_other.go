//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd || windows)

package lock

import (
	"errors"
	"os"
)

const openFlag = os.O_RDONLY

// lockFile is not supported here.
func lockFile(*os.File, Mode, bool) (bool, error) { return false, errors.ErrUnsupported }

func unlockFile(*os.File) error { return errors.ErrUnsupported }
