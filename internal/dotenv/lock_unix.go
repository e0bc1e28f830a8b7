//go:build unix

package dotenv

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive flock on the directory of path, so that two
// Updates of files there (two `portfor env --write` at once) read, merge
// and rename one after the other: without it, the last rename wins and
// the other's variables are lost. No file is created for it. It returns
// the function that lets go; where the directory cannot be opened or
// locked, it does nothing (the write is still atomic, only not serialised).
func lockDir(path string) (unlock func()) {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return func() {}
	}
	for {
		err = unix.Flock(int(d.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		d.Close()
		return func() {}
	}
	return func() { d.Close() } // closing the descriptor releases the lock
}
