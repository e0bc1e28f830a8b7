package portserver

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerOf reads the client's credentials (SO_PEERCRED); ok is false when
// the connection cannot tell.
func peerOf(c net.Conn) (peer, bool) {
	var p peer
	ok := controlUnix(c, func(fd int) error {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			p = peer{pid: int(cred.Pid), uid: int(cred.Uid)}
		}
		return err
	})
	return p, ok
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
