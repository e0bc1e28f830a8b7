package portserver

import (
	"net"
	"os"
	"syscall"
)

// listenUnixMode creates the socket file with no permission bits beyond
// mode from the start (umask), so there is no moment when others could
// connect. The umask is process-wide: for that instant, files other
// goroutines create get at most mode's permissions too, never more.
func listenUnixMode(path string, mode os.FileMode) (*net.UnixListener, error) {
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	defer syscall.Umask(old)
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
