package portserver

import "net"

// peer is who is at the other end of a Unix socket, as the kernel says.
type peer struct {
	pid int
	uid int
}

// controlUnix runs fn on the file descriptor of a Unix socket connection;
// ok is false for any other connection or when fn fails.
func controlUnix(c net.Conn, fn func(fd int) error) bool {
	uc, isUnix := c.(*net.UnixConn)
	if !isUnix {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return false
	}
	return ferr == nil
}
