//go:build !linux

package netprobe

import (
	"errors"
	"net"
	"strconv"
	"syscall"
)

// canBind falls back to the net package where raw sockets are not wired up:
// a listener on each address, closed at once.
func canBind(port int, p Proto) (bool, error) {
	for _, host := range []string{"0.0.0.0", "127.0.0.1", "::", "::1"} {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		var err error
		if p == UDP {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EACCES):
			return false, nil
		case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT):
		default:
			return false, err
		}
	}
	return true, nil
}
