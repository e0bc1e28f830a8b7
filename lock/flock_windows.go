//go:build windows

package lock

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// openFlag opens the lock file for reading and writing.
const openFlag = os.O_RDWR

// lockFile takes a LockFileEx lock of mode on the first byte of f, waiting
// for it when wait is set; without wait, a busy lock is ok == false with a
// nil error.
func lockFile(f *os.File, mode Mode, wait bool) (ok bool, err error) {
	var flags uint32
	if mode == Exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	if !wait {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	err = windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, &windows.Overlapped{})
	if !wait && (errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING)) {
		return false, nil
	}
	if err != nil {
		return false, os.NewSyscallError("LockFileEx", err)
	}
	return true, nil
}

// unlockFile lets go of the lock on f.
func unlockFile(f *os.File) error {
	if err := windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{}); err != nil {
		return os.NewSyscallError("UnlockFileEx", err)
	}
	return nil
}
