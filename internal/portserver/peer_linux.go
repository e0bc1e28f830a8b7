package portserver

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// peer is who is at the other end of a Unix socket, as the kernel says.
type peer struct {
	pid int
	uid int
}

// peerOf reads the client's credentials (SO_PEERCRED); ok is false when
// the connection cannot tell.
func peerOf(c net.Conn) (peer, bool) {
	uc, isUnix := c.(*net.UnixConn)
	if !isUnix {
		return peer{}, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return peer{}, false
	}
	return peer{pid: int(cred.Pid), uid: int(cred.Uid)}, true
}

// listenUnixMode creates the socket file with no permission bits beyond
// mode from the start (umask), so there is no moment when others could
// connect. The umask is process-wide: for that instant, files other
// goroutines create get at most mode's permissions too, never more.
func listenUnixMode(path string, mode os.FileMode) (*net.UnixListener, error) {
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	defer syscall.Umask(old)
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
