// Package peercred tells who is at the other end of a Unix socket, as the
// kernel reports it (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS). The
// port server checks its clients with it, and its client checks the
// server.
package peercred

import (
	"fmt"
	"net"
	"os/user"
	"strconv"
)

// Peer is who is at the other end of a Unix socket, as the kernel says.
type Peer struct {
	PID int // 0 where the kernel does not say
	UID int
}

// String names the user and process, e.g. "uid 1000 (ann), pid 4242".
func (p Peer) String() string {
	s := fmt.Sprintf("uid %d", p.UID)
	if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil {
		s += " (" + u.Username + ")"
	}
	if p.PID > 0 {
		s += fmt.Sprintf(", pid %d", p.PID)
	}
	return s
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
