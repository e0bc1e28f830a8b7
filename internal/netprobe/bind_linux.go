package netprobe

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// wildcardMeetsAll says that a TCP bind (and listen) of a family's
// wildcard address is refused whenever one of the family's own addresses
// would be: Linux checks a new TCP socket against every socket on the port
// whose address overlaps its own, with the same rules for reuse whatever
// the addresses, and the wildcard overlaps them all. So once 0.0.0.0 (or
// [::]) could be bound, 127.0.0.1 (or ::1) need not be tried: two TCP
// sockets a probe instead of four. UDP still tries every address: kernels
// without commit e537dd15 ("udp: Fix wildcard bind conflict check when
// using hash2", 2026) check a wildcard UDP bind only against the
// wildcard's own slot once more than 10 sockets share the port's, and miss
// a holder on 127.0.0.1. BSD and Windows let a specific address be bound
// beside a wildcard one (SO_REUSEADDR there), so they try every address.
// TestWildcardAnswersForItsFamily holds the kernel to it.
const wildcardMeetsAll = true

// bindOnce binds (and for TCP listens on) one address with raw system calls
// (cheaper than the net package, and with full control of the options) and
// closes the socket.
func bindOnce(ip netip.Addr, port int, p Proto) (bool, error) {
	typ := unix.SOCK_STREAM
	if p == UDP {
		typ = unix.SOCK_DGRAM
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr
	if ip.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT) {
			return false, fmt.Errorf("probe %s port %d on %s: %w (%v)", p, port, ip, ErrAddrNotAvailable, err)
		}
		return false, fmt.Errorf("probe %s port %d on %s: socket: %w", p, port, ip, err)
	}
	defer unix.Close(fd)
	if p == TCP {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return false, fmt.Errorf("probe %s port %d on %s: SO_REUSEADDR: %w", p, port, ip, err)
		}
	}
	if family == unix.AF_INET6 && ip.IsUnspecified() {
		// Dual-stack, as Go and most servers bind [::]: also meets IPv4 holders.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	err = unix.Bind(fd, sa)
	if err == nil && p == TCP {
		err = unix.Listen(fd, 1)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EADDRINUSE), errors.Is(err, unix.EACCES):
		return false, nil
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return false, fmt.Errorf("probe %s port %d on %s: %w", p, port, ip, ErrAddrNotAvailable)
	}
	return false, fmt.Errorf("probe %s port %d on %s: %w", p, port, ip, err)
}
