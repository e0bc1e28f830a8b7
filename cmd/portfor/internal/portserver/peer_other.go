//go:build !linux && !darwin

package portserver

import (
	"net"
	"os"
)

// peerOf cannot tell the client's credentials here.
func peerOf(net.Conn) (peer, bool) { return peer{}, false }

// listenUnixMode creates the socket; Listen then sets its mode.
func listenUnixMode(path string, _ os.FileMode) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
