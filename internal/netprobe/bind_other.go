//go:build !linux

package netprobe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// wildcardMeetsAll is false here: a wildcard bind does not answer for the
// family's other addresses (see bind_linux.go).
const wildcardMeetsAll = false

// bindOnce falls back to the net package where raw sockets are not wired
// up: a listener (or UDP socket) on the address, closed at once.
func bindOnce(ip netip.Addr, port int, p Proto) (bool, error) {
	addr := netip.AddrPortFrom(ip, uint16(port)).String()
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
		return true, nil
	case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EACCES):
		return false, nil
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT):
		return false, fmt.Errorf("probe %s port %d on %s: %w", p, port, ip, ErrAddrNotAvailable)
	}
	return false, fmt.Errorf("probe %s port %d on %s: %w", p, port, ip, err)
}
