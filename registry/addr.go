package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/portrange"
)

// ErrInvalidAddress is returned (in an [*AddressError]) for an address that
// cannot be parsed.
var ErrInvalidAddress = errors.New("invalid address")

// AddressError describes an address that was rejected.
type AddressError struct {
	Input  string
	Reason string
}

// Error returns e.g. `invalid address "host:http": port "http" is not a number from 1 to 65535`.
func (e *AddressError) Error() string {
	return fmt.Sprintf("invalid address %q: %s", e.Input, e.Reason)
}

// Unwrap returns ErrInvalidAddress.
func (e *AddressError) Unwrap() error { return ErrInvalidAddress }

// Localhost is the host an address without one means. It stands for both
// 127.0.0.1 and ::1: a check or wait on it succeeds on whichever family the
// server uses.
const Localhost = "localhost"

// HostPort is a TCP address as users write it: a host name or IP literal
// and a port.
type HostPort struct {
	Host string // a name, an IPv4 literal or an IPv6 literal without brackets
	Port int    // 1-65535
}

// String formats the address as "host:port" or "[v6]:port".
func (hp HostPort) String() string { return net.JoinHostPort(hp.Host, strconv.Itoa(hp.Port)) }

// ParseHostPort reads "host:port", "[v6]:port", ":port" or a bare "port";
// the last two mean [Localhost]. Hosts are IP literals or DNS names (letters,
// digits, '-', '_' and '.', at most 253 bytes); an IPv6 literal needs
// brackets. The error is an [*AddressError] wrapping [ErrInvalidAddress].
func ParseHostPort(s string) (HostPort, error) {
	bad := func(format string, args ...any) (HostPort, error) {
		return HostPort{}, &AddressError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty")
	}
	host, portStr := "", s
	if strings.ContainsAny(s, ":[]") {
		var err error
		host, portStr, err = net.SplitHostPort(s)
		if err != nil && !strings.Contains(s, "[") && strings.Count(s, ":") > 1 {
			return bad("an IPv6 address needs brackets, as in [::1]:8080")
		}
		if err != nil {
			var ae *net.AddrError
			if errors.As(err, &ae) {
				return bad("%s", ae.Err)
			}
			return bad("%v", err)
		}
		if strings.HasPrefix(s, "[") {
			ip, err := netip.ParseAddr(host)
			if err != nil || !ip.Is6() {
				return bad("%q in brackets is not an IPv6 address", host)
			}
			host = ip.String()
		} else if host != "" {
			if ip, err := netip.ParseAddr(host); err == nil {
				if ip.Is6() {
					return bad("an IPv6 address needs brackets: [%s]:%s", host, portStr)
				}
				host = ip.String()
			} else if reason := checkHostName(host); reason != "" {
				return bad("%s", reason)
			}
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > portrange.MaxPort || strings.HasPrefix(portStr, "+") {
		return bad("port %q is not a number from 1 to 65535", portStr)
	}
	if host == "" {
		host = Localhost
	}
	return HostPort{Host: host, Port: port}, nil
}

// checkHostName returns why name is not a plausible DNS name, or "".
func checkHostName(name string) string {
	if len(name) > 253 {
		return "host name longer than 253 bytes"
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Sprintf("host %q has an empty or over-long label", name)
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return fmt.Sprintf("host %q contains %q", name, r)
			}
		}
	}
	return ""
}

// ClientHost returns where a client connects to reach a server listening on
// host: the IPv4 wildcard 0.0.0.0 becomes 127.0.0.1, the IPv6 wildcard (::,
// ::0, ::0.0.0.0) becomes ::1, and anything else is returned unchanged.
func ClientHost(host string) string {
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil || !ip.IsUnspecified() {
		return host
	}
	if ip.Is4() {
		return "127.0.0.1"
	}
	return "::1"
}

// resolve returns the IPs to check for host: 127.0.0.1 and ::1 for
// Localhost (never the resolver's idea of it), the client address for a
// wildcard literal, the literal itself, or what the resolver says.
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if strings.EqualFold(host, Localhost) {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	if ip, err := netip.ParseAddr(ClientHost(host)); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}
