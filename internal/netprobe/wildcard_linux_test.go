package netprobe_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/netprobe"
)

// everyAddress is CanBind as it was before the wildcard answered for its
// family: a bind of every one of ServerAddrs.
func everyAddress(t *testing.T, port int, p netprobe.Proto) bool {
	t.Helper()
	for _, ip := range netprobe.ServerAddrs() {
		ok, err := netprobe.BindAddr(ip, port, p)
		if errors.Is(err, netprobe.ErrAddrNotAvailable) {
			continue
		}
		require.NoError(t, err)
		if !ok {
			return false
		}
	}
	return true
}

// holder is a socket of another program on a port.
type holder struct {
	p         netprobe.Proto
	addr      string // "::ffff:127.0.0.1" is an IPv6 socket on a v4-mapped address
	v6only    bool
	reuseAddr bool
	reusePort bool
	listen    bool
}

func (h holder) String() string {
	s := fmt.Sprintf("%s %s", h.p, h.addr)
	for _, f := range []struct {
		on   bool
		name string
	}{{h.v6only, "v6only"}, {h.reuseAddr, "SO_REUSEADDR"}, {h.reusePort, "SO_REUSEPORT"}, {h.listen, "listening"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

// hold makes h's socket on port, or skips the test where the host lacks
// the address.
func (h holder) hold(t *testing.T, port int) {
	t.Helper()
	ip := netip.MustParseAddr(h.addr)
	typ := unix.SOCK_STREAM
	if h.p == netprobe.UDP {
		typ = unix.SOCK_DGRAM
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	if ip.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no %s socket here: %v", h.addr, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	v6only := 0
	if h.v6only {
		v6only = 1
	}
	for _, o := range []struct {
		on             bool
		level, opt, to int
	}{
		{h.reuseAddr, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{h.reusePort, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{family == unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only},
	} {
		if o.on {
			require.NoError(t, unix.SetsockoptInt(fd, o.level, o.opt, o.to))
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			t.Skipf("no %s here", h.addr)
		}
		t.Fatalf("bind %v: %v", h, err)
	}
	if h.listen {
		require.NoError(t, unix.Listen(fd, 1))
	}
}

// TestWildcardAnswersForItsFamily holds Linux to what CanBind relies on
// (bind_linux.go): whatever holds a port, binding the wildcard addresses
// gives the same answer as binding every address.
func TestWildcardAnswersForItsFamily(t *testing.T) {
	var holders []holder
	for _, addr := range []string{"127.0.0.1", "127.0.0.2", "0.0.0.0", "::", "::1", "::ffff:127.0.0.1"} {
		for _, v6only := range []bool{false, true} {
			if ip := netip.MustParseAddr(addr); v6only && (ip.Is4() || ip.Is4In6()) {
				continue // a v6-only socket has no IPv4 address
			}
			for _, reuseAddr := range []bool{false, true} {
				for _, reusePort := range []bool{false, true} {
					holders = append(holders,
						holder{netprobe.TCP, addr, v6only, reuseAddr, reusePort, true},
						holder{netprobe.TCP, addr, v6only, reuseAddr, reusePort, false},
						holder{netprobe.UDP, addr, v6only, reuseAddr, reusePort, false})
				}
			}
		}
	}
	taken := 0
	for _, h := range holders {
		t.Run(h.String(), func(t *testing.T) {
			port := freeEverywhere(t)
			h.hold(t, port)
			want := everyAddress(t, port, h.p)
			got, err := netprobe.CanBind(port, h.p)
			require.NoError(t, err)
			assert.Equal(t, want, got, "CanBind says %v; a bind of every address says %v", got, want)
			if !want {
				taken++
			}
		})
	}
	// The holders must have held something, or the test proves nothing.
	assert.Greater(t, taken, len(holders)/2, "ports taken by %d holders of %d", taken, len(holders))
}

// TestCrowdedPortsAnswerAlike puts many sockets on one port: past 10 in
// its slot, kernels without commit e537dd15 check a wildcard UDP bind
// against the wildcard's own slot only, and would miss these holders on
// loopback, which is why UDP probes try every address. TCP wildcard binds
// walk every socket on the port, however many.
func TestCrowdedPortsAnswerAlike(t *testing.T) {
	many := func(p netprobe.Proto, addrs []string, reuseAddr, reusePort, listen bool) []holder {
		var hs []holder
		for _, a := range addrs {
			hs = append(hs, holder{p, a, false, reuseAddr, reusePort, listen})
		}
		return hs
	}
	var spread []string // 127.0.0.1 to 127.0.0.40
	for i := 1; i <= 40; i++ {
		spread = append(spread, netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}).String())
	}
	cases := []struct {
		name string
		hs   []holder
	}{
		{"11 UDP SO_REUSEPORT on 127.0.0.1", many(netprobe.UDP, slices.Repeat([]string{"127.0.0.1"}, 11), false, true, false)},
		{"11 UDP SO_REUSEPORT on ::1", many(netprobe.UDP, slices.Repeat([]string{"::1"}, 11), false, true, false)},
		{"11 UDP SO_REUSEADDR on 127.0.0.1", many(netprobe.UDP, slices.Repeat([]string{"127.0.0.1"}, 11), true, false, false)},
		{"UDP on 127.0.0.1 to 127.0.0.40", many(netprobe.UDP, spread, false, false, false)},
		{"40 TCP SO_REUSEPORT listeners on 127.0.0.1", many(netprobe.TCP, slices.Repeat([]string{"127.0.0.1"}, 40), true, true, true)},
		{"40 TCP SO_REUSEPORT listeners on ::1", many(netprobe.TCP, slices.Repeat([]string{"::1"}, 40), true, true, true)},
		{"TCP listeners on 127.0.0.1 to 127.0.0.40", many(netprobe.TCP, spread, true, false, true)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := freeEverywhere(t)
			for _, h := range c.hs {
				h.hold(t, port)
			}
			p := c.hs[0].p
			want := everyAddress(t, port, p)
			got, err := netprobe.CanBind(port, p)
			require.NoError(t, err)
			assert.False(t, want, "the holders did not take port %d", port)
			assert.Equal(t, want, got, "CanBind says %v; a bind of every address says %v", got, want)
		})
	}
}
