//go:build unix

package store

import (
	"os"
	"syscall"
)

// lockShared takes bbolt's lock on f shared (flock, as bbolt does), without
// waiting; it reports whether it got it. Closing f lets go of it.
func lockShared(f *os.File) bool {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err == nil
		}
	}
}
