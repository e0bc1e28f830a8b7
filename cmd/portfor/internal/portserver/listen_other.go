//go:build !linux

package portserver

import (
	"net"
	"os"
)

// listenUnixMode creates the socket; Listen then sets its mode. (The umask
// trick is Linux's; here the mode is set right after the bind.)
func listenUnixMode(path string, _ os.FileMode) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
