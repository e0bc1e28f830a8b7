//go:build unix

package safefile

import (
	"os"
	"syscall"
)

// extraFlags: no following a final link; no blocking in open on a FIFO.
const extraFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// clearNonblock puts a regular file back into blocking mode (for a regular
// file the flag changes nothing, but it is not left set by surprise).
func clearNonblock(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
