//go:build unix

package safefile

import (
	"os"

	"golang.org/x/sys/unix"
)

// OpenFlags are the flags [Open] adds to every open: no following a final
// link, no blocking in open on a FIFO. They are exported for package lock,
// whose lock file github.com/gofrs/flock opens itself.
const OpenFlags = unix.O_NOFOLLOW | unix.O_NONBLOCK

// clearNonblock puts a regular file opened with flag back into blocking
// mode (for a regular file the flag changes nothing, but it is not left set
// by surprise). One F_SETFL does it: it sets the status flags from scratch,
// so it keeps O_APPEND if asked for and drops O_NONBLOCK.
func clearNonblock(f *os.File, flag int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { _, serr = unix.FcntlInt(fd, unix.F_SETFL, flag&os.O_APPEND) }); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("fcntl", serr)
	}
	return nil
}
