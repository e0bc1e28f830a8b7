package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/store"
)

// Protocol selects transport protocols for [CanBind]; values may be or-ed.
type Protocol = netprobe.Proto

const (
	// TCP: a stream socket binds with SO_REUSEADDR and listens.
	TCP Protocol = netprobe.TCP
	// UDP: a datagram socket binds.
	UDP Protocol = netprobe.UDP
)

// PortRange is an inclusive range of ports.
type PortRange = portrange.Range

// PortList is an ordered list of port ranges, as [ParsePorts] reads it.
// Its order is the order ports are tried in.
type PortList []PortRange

// ParsePorts reads a comma-separated list of ports and inclusive ranges,
// such as "8000-8100,8005,9000-9010". The error wraps [ErrInvalidPort].
func ParsePorts(s string) (PortList, error) {
	l, err := portrange.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPort, err)
	}
	return PortList(l), nil
}

// Contains reports whether port is in the list.
func (l PortList) Contains(port int) bool { return portrange.List(l).Contains(port) }

// Ports yields the list's ports in order, for use with range.
func (l PortList) Ports(yield func(int) bool) { portrange.List(l).Ports(yield) }

// Len returns how many ports the list holds, counting a port listed twice
// twice.
func (l PortList) Len() int { return portrange.List(l).Len() }

// At returns the i-th port of the list, counting from 0, or 0 when there
// is none.
func (l PortList) At(i int) int { return portrange.List(l).At(i) }

// Index returns the position of the first port at or above port, or 0.
func (l PortList) Index(port int) int { return portrange.List(l).Index(port) }

// Without returns the list with the ports of cut taken out, in the same
// order.
func (l PortList) Without(cut PortRange) PortList { return PortList(portrange.List(l).Without(cut)) }

// String returns the list as ParsePorts reads it, e.g. "8000-8100,9000".
func (l PortList) String() string { return portrange.List(l).String() }

// ErrPortInUse is returned (in a [*PortInUseError]) by [AssertFree] when
// something accepts connections on the address, and by [Registry.Listen]
// and its kin when a bind is refused because something holds the port.
var ErrPortInUse = errors.New("port in use")

// PortInUseError says which address accepted a connection ([AssertFree]),
// or which bind was refused and who holds the port ([Registry.Listen]).
type PortInUseError struct {
	Addr HostPort   // the address asked about
	IP   netip.Addr // the address that accepted, or that the bind was refused on
	// Proto is "tcp" or "udp" for a refused bind, "" from AssertFree.
	Proto string
	// Holders are the sockets of Proto on the port, with their processes,
	// where the system shows them (see [Registry.Who]): set for a refused
	// bind, and empty when nothing visible holds the port.
	Holders []Holder
}

// Error returns e.g. "Port 8080 is in use on localhost (::1)" (AssertFree)
// or "port 8000: in use by node (pid 4242) in /home/u/app" (a refused
// bind): one line, whatever the processes' names hold.
func (e *PortInUseError) Error() string {
	if e.Proto == "" {
		return fmt.Sprintf("Port %d is in use on %s (%s)", e.Addr.Port, e.Addr.Host, e.IP)
	}
	port := fmt.Sprintf("port %d", e.Addr.Port)
	if e.Proto != "tcp" {
		port = e.Proto + " " + port
	}
	if who := holdersPhrase(e.Holders); who != "" {
		return port + ": in use by " + who
	}
	return port + ": in use on " + e.IP.String()
}

// Unwrap returns ErrPortInUse.
func (e *PortInUseError) Unwrap() error { return ErrPortInUse }

// acceptingIP returns the first of addr's IPs that accepts a connection.
func acceptingIP(ctx context.Context, addr HostPort) (netip.Addr, bool, error) {
	ips, err := resolve(ctx, addr.Host)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, ip := range ips {
		ok, err := netprobe.Accepting(ctx, ip, addr.Port)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("connect %s: %w", netip.AddrPortFrom(ip, uint16(addr.Port)), err)
		}
		if ok {
			return ip, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// AssertFree returns nil when nothing accepts TCP connections on any
// address addr's host resolves to ([Localhost]: 127.0.0.1 and ::1), and a
// [*PortInUseError] naming the address that did otherwise.
//
// This is portend's assert_free: a refused connection counts as free. A
// server may still fail to bind a port that is free in this sense (a socket
// bound but not listening, a UDP socket); see [CanBind] and [WaitFree].
func AssertFree(ctx context.Context, addr HostPort) error {
	ip, busy, err := acceptingIP(ctx, addr)
	if err != nil {
		return err
	}
	if busy {
		return &PortInUseError{Addr: addr, IP: ip}
	}
	return nil
}

// IsFree reports whether nothing accepts TCP connections on addr (see
// [AssertFree]).
func IsFree(ctx context.Context, addr HostPort) (bool, error) {
	err := AssertFree(ctx, addr)
	if errors.Is(err, ErrPortInUse) {
		return false, nil
	}
	return err == nil, err
}

// CanBind reports whether a server could bind port on this host now, for
// each of protos (TCP when zero): on 0.0.0.0, 127.0.0.1, [::] (dual-stack)
// and [::1], skipping a family the host lacks (on Linux the wildcard
// addresses answer for the others: docs/design.md). For TCP a socket with
// SO_REUSEADDR binds and listens, so connections in TIME_WAIT do not count;
// EACCES counts as taken. This is the stricter sense of free. The answer can
// be stale the moment it is returned.
func CanBind(port int, protos Protocol) (bool, error) {
	if port < 1 || port > portrange.MaxPort {
		return false, &PortError{Port: port, Err: ErrInvalidPort}
	}
	return netprobe.CanBind(port, protos)
}

// bindable reports whether a server could bind addr now: on every server
// address for Localhost and wildcards, on the address itself for an IP of
// this host. For a host that is not local it reports true: nothing here can
// bind there, and [AssertFree] is the only test.
func bindable(ctx context.Context, addr HostPort) (bool, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(addr.Host); err == nil {
		ips = []netip.Addr{ip}
	} else if addr.Host == Localhost {
		ips = netprobe.ServerAddrs()
	} else {
		var err error
		if ips, err = resolve(ctx, addr.Host); err != nil {
			return false, err
		}
	}
	for _, ip := range ips {
		if ip.IsUnspecified() || ip.IsLoopback() {
			ips = netprobe.ServerAddrs() // a server there conflicts with all of them
			break
		}
	}
	return netprobe.CanBindAddrs(ips, addr.Port, netprobe.TCP)
}

// FindOptions say what [Registry.FindFree] does when none of the ports
// asked for is free. The zero value fails.
type FindOptions struct {
	// AnyPort falls back to any port the OS gives out ([FindAvailableLocal])
	// that no id holds.
	AnyPort bool
}

// FindFree returns the first port of ports, in the order given, that is
// assigned to no id in the registry and that a server could bind now (see
// [CanBind]). Ports below [MinPort] are skipped. When none is free it
// returns an error wrapping [ErrNoPortAvailable] that names the list, or,
// with opts.AnyPort, falls back to [FindAvailableLocal]. FindFree records
// nothing: use [Registry.ForwardPort] or a lease to keep the port.
func (r *Registry) FindFree(ctx context.Context, ports PortList, opts FindOptions) (int, error) {
	if err := r.usable(); err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	assigned := map[int]bool{}
	err := r.each(ctx, func(e store.Entry) error {
		assigned[e.Port] = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("find free port in %s: %w", ports, err)
	}
	var found int
	for p := range ports.Ports {
		if p < MinPort || assigned[p] {
			continue
		}
		ok, err := netprobe.CanBind(p, netprobe.TCP)
		if err != nil {
			return 0, fmt.Errorf("find free port in %s: %w", ports, err)
		}
		if ok {
			found = p
			break
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	if found != 0 {
		return found, nil
	}
	if !opts.AnyPort {
		return 0, fmt.Errorf("find free port in %s: %w", ports, ErrNoPortAvailable)
	}
	for attempt := 0; attempt < 16; attempt++ {
		p, err := FindAvailableLocal()
		if err != nil || !assigned[p] {
			return p, err
		}
	}
	return 0, fmt.Errorf("find free port in %s, or any: %w", ports, ErrNoPortAvailable)
}

// FindAvailableLocal returns a port the OS considers free (it binds
// 127.0.0.1:0 and reads the port back), checked with [CanBind] on every
// server address. Such ports come from the ephemeral range, where outgoing
// connections may take them later; prefer [Registry.ForwardPort] or a lease
// for anything that lives long.
func FindAvailableLocal() (int, error) {
	for attempt := 0; attempt < 16; attempt++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find available port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if ok, err := netprobe.CanBind(port, netprobe.TCP); err == nil && ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("find available port: %w", ErrNoPortAvailable)
}
