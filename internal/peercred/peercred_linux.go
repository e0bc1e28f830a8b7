package peercred

import (
	"net"

	"golang.org/x/sys/unix"
)

// Of reads the credentials of c's other end (SO_PEERCRED); ok is false
// when the connection cannot tell.
func Of(c net.Conn) (p Peer, ok bool) {
	ok = controlUnix(c, func(fd int) error {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			p = Peer{PID: int(cred.Pid), UID: int(cred.Uid)}
		}
		return err
	})
	return p, ok
}
