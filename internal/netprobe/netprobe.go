// Package netprobe asks the host whether a port is free, the way a server
// that is about to start would find out: by binding it.
package netprobe

import "fmt"

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

// CanBind reports whether a server could bind port now, for each protocol in
// protos, on every address it might use: the wildcard and loopback addresses
// of IPv4 (0.0.0.0, 127.0.0.1) and IPv6 ([::] dual-stack, [::1]). A family
// the host lacks (no IPv6, or no ::1 on loopback) is skipped. A bind refused
// with EADDRINUSE or EACCES means the port is taken (false, nil); other
// failures are returned as errors.
//
// The answer is a snapshot: another process may take the port a moment later.
// Probes from two goroutines on the same port at once may see each other's
// socket and call the port taken; they never call a taken port free.
func CanBind(port int, protos Proto) (bool, error) {
	if port < 1 || port > 65535 {
		return false, fmt.Errorf("probe port %d: out of range 1-65535", port)
	}
	if protos == 0 {
		protos = TCP
	}
	for _, p := range []Proto{TCP, UDP} {
		if protos&p == 0 {
			continue
		}
		ok, err := canBind(port, p)
		if err != nil || !ok {
			return ok, err
		}
	}
	return true, nil
}
