package peercred

import (
	"net"

	"golang.org/x/sys/unix"
)

// Of reads the credentials of c's other end (LOCAL_PEERCRED,
// LOCAL_PEERPID); ok is false when the connection cannot tell.
func Of(c net.Conn) (p Peer, ok bool) {
	ok = controlUnix(c, func(fd int) error {
		cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if err == nil {
			p.UID = int(cred.Uid)
			p.PID, _ = unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
		return err
	})
	return p, ok
}
