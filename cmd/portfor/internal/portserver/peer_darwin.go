package portserver

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerOf reads the client's credentials (LOCAL_PEERCRED, LOCAL_PEERPID).
func peerOf(c net.Conn) (peer, bool) {
	var p peer
	ok := controlUnix(c, func(fd int) error {
		cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if err == nil {
			p.uid = int(cred.Uid)
			p.pid, _ = unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
		return err
	})
	return p, ok
}

// listenUnixMode creates the socket; Listen then sets its mode. (The umask
// trick is Linux's; here the mode is set right after the bind.)
func listenUnixMode(path string, _ os.FileMode) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
