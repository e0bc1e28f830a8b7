package portserver

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

type peer struct {
	pid int
	uid int
}

// peerOf reads the client's credentials (LOCAL_PEERCRED, LOCAL_PEERPID).
func peerOf(c net.Conn) (peer, bool) {
	uc, isUnix := c.(*net.UnixConn)
	if !isUnix {
		return peer{}, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}, false
	}
	var p peer
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		var cred *unix.Xucred
		if cred, cerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED); cerr == nil {
			p.uid = int(cred.Uid)
			p.pid, _ = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
	}); err != nil || cerr != nil {
		return peer{}, false
	}
	return p, true
}

// listenUnixMode creates the socket; Listen then sets its mode. (The umask
// trick is Linux's; here the mode is set right after the bind.)
func listenUnixMode(path string, _ os.FileMode) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
