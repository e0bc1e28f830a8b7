// Package netprobe asks the host whether a port is free, the way a server
// that is about to start would find out: by binding it.
package netprobe

import (
	"errors"
	"fmt"
	"net/netip"
)

// Proto selects the transport protocols to probe; values may be or-ed.
type Proto int

const (
	// TCP probes stream sockets: bind with SO_REUSEADDR, then listen, as a
	// server does, so a port held only by connections in TIME_WAIT is free.
	TCP Proto = 1 << iota
	// UDP probes datagram sockets: a plain bind, as a UDP server does.
	UDP
)

// String returns "tcp", "udp" or "tcp+udp".
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case TCP | UDP:
		return "tcp+udp"
	}
	return fmt.Sprintf("Proto(%d)", int(p))
}

// ErrAddrNotAvailable is returned by [BindAddr] when the address is not one
// of this host's, or its family is not supported here.
var ErrAddrNotAvailable = errors.New("address not available on this host")

var serverAddrs = [...]netip.Addr{
	netip.IPv4Unspecified(),
	netip.AddrFrom4([4]byte{127, 0, 0, 1}),
	netip.IPv6Unspecified(),
	netip.IPv6Loopback(),
}

// ServerAddrs returns the addresses a server may bind: the IPv4 and IPv6
// wildcard addresses ([::] dual-stack) and loopback addresses.
func ServerAddrs() []netip.Addr { a := serverAddrs; return a[:] }

// CanBind reports whether a server could bind port now, for each protocol in
// protos (TCP when zero), on every one of [ServerAddrs] (on Linux, binding
// the wildcard addresses answers for the others over TCP). A family the host
// lacks (no IPv6, or no ::1 on loopback) is skipped. A bind refused with
// EADDRINUSE or EACCES means the port is taken (false, nil); other failures
// are returned as errors.
//
// The answer is a snapshot: another process may take the port a moment later.
// Probes from two goroutines on the same port at once may see each other's
// socket and call the port taken; they never call a taken port free.
func CanBind(port int, protos Proto) (bool, error) {
	return CanBindAddrs(serverAddrs[:], port, protos)
}

// CanBindAddrs is [CanBind] on the given addresses; addresses this host does
// not have are skipped. On Linux a TCP probe does not try an address once
// its family's wildcard address, earlier in addrs, could be bound: the
// answer would be the same (see wildcardMeetsAll).
func CanBindAddrs(addrs []netip.Addr, port int, protos Proto) (bool, error) {
	if protos == 0 {
		protos = TCP
	}
	for _, p := range []Proto{TCP, UDP} {
		if protos&p == 0 {
			continue
		}
		var any4, any6 bool // the family's wildcard address could be bound
		for _, ip := range addrs {
			ip = ip.Unmap()
			if wildcardMeetsAll && p == TCP && (ip.Is4() && any4 || ip.Is6() && any6) {
				continue
			}
			ok, err := BindAddr(ip, port, p)
			if errors.Is(err, ErrAddrNotAvailable) {
				continue
			}
			if err != nil || !ok {
				return false, err
			}
			if ip.IsUnspecified() {
				any4, any6 = any4 || ip.Is4(), any6 || ip.Is6()
			}
		}
	}
	return true, nil
}

// BindAddr reports whether port can be bound on ip for protocol p (one of
// TCP or UDP) now: it binds (and for TCP listens), then closes at once. It
// returns an error wrapping [ErrAddrNotAvailable] when ip is not this host's.
func BindAddr(ip netip.Addr, port int, p Proto) (bool, error) {
	if port < 1 || port > 65535 {
		return false, fmt.Errorf("probe port %d: out of range 1-65535", port)
	}
	if p != TCP && p != UDP {
		return false, fmt.Errorf("probe port %d: protocol %v: want tcp or udp", port, p)
	}
	return bindOnce(ip.Unmap(), port, p)
}
