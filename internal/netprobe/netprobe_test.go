//go:build linux

package netprobe_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/netprobe"
)

func hasIPv6(t *testing.T) bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func portOf(t *testing.T, a net.Addr) int {
	t.Helper()
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	t.Fatalf("unexpected address %T", a)
	return 0
}

func TestTCPListenerOnAnyAddressMakesPortTaken(t *testing.T) {
	addrs := []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp4", "0.0.0.0:0"},
		{"tcp", "[::]:0"},
		{"tcp6", "[::1]:0"},
	}
	for _, a := range addrs {
		t.Run(a.addr, func(t *testing.T) {
			if a.network != "tcp4" && !hasIPv6(t) {
				t.Skip("no IPv6 on this host")
			}
			// A port free on every address and both protocols first: the OS
			// picks a port-0 port per address, so it may be busy elsewhere.
			var l net.Listener
			var port int
			for attempt := 0; l == nil && attempt < 50; attempt++ {
				port = freeEverywhere(t)
				l, _ = net.Listen(a.network, net.JoinHostPort(strings.Trim(a.addr[:strings.LastIndex(a.addr, ":")], "[]"), strconv.Itoa(port)))
			}
			require.NotNil(t, l, "no port to listen on")
			ok, err := netprobe.CanBind(port, netprobe.TCP)
			require.NoError(t, err)
			assert.False(t, ok, "port %d held by a listener on %s reported bindable", port, a.addr)
			ok, err = netprobe.CanBind(port, netprobe.UDP)
			require.NoError(t, err)
			assert.True(t, ok, "a TCP listener does not hold the UDP port")
			require.NoError(t, l.Close())
			ok, err = netprobe.CanBind(port, netprobe.TCP)
			require.NoError(t, err)
			assert.True(t, ok, "port %d free again after close", port)
		})
	}
}

// freeEverywhere returns a port that CanBind calls free on TCP and UDP.
func freeEverywhere(t *testing.T) int {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		port := portOf(t, l.Addr())
		l.Close()
		if ok, err := netprobe.CanBind(port, netprobe.TCP|netprobe.UDP); err == nil && ok {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

func TestUDPSocketMakesPortTakenForUDP(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		if addr[0] == '[' && !hasIPv6(t) {
			continue
		}
		c, err := net.ListenPacket("udp", addr)
		require.NoError(t, err)
		port := portOf(t, c.LocalAddr())
		ok, err := netprobe.CanBind(port, netprobe.UDP)
		require.NoError(t, err)
		assert.False(t, ok, "UDP port %d on %s", port, addr)
		ok, err = netprobe.CanBind(port, netprobe.TCP|netprobe.UDP)
		require.NoError(t, err)
		assert.False(t, ok)
		require.NoError(t, c.Close())
	}
}

func TestTimeWaitIsBindable(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := portOf(t, l.Addr())
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp4", l.Addr().String())
	require.NoError(t, err)
	s := <-accepted
	require.NotNil(t, s)
	// The server side closes first, so its end (on the listening port) goes to TIME_WAIT.
	require.NoError(t, s.Close())
	buf := make([]byte, 1)
	_, _ = c.Read(buf) // wait for the FIN
	require.NoError(t, c.Close())
	require.NoError(t, l.Close())

	// Without SO_REUSEADDR the bind fails: proof that TIME_WAIT is there.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	unix.Close(fd)
	require.ErrorIs(t, err, unix.EADDRINUSE, "expected a TIME_WAIT entry on port %d", port)

	ok, err := netprobe.CanBind(port, netprobe.TCP)
	require.NoError(t, err)
	assert.True(t, ok, "port %d with a connection in TIME_WAIT must be bindable with SO_REUSEADDR", port)
}

func TestBoundButNotListeningSocketMakesPortTaken(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port
	ok, err := netprobe.CanBind(port, netprobe.TCP)
	require.NoError(t, err)
	assert.False(t, ok, "a socket bound (without SO_REUSEADDR) to port %d holds it", port)
}

func TestCanBindRejectsBadPorts(t *testing.T) {
	for _, p := range []int{0, -1, 65536} {
		_, err := netprobe.CanBind(p, netprobe.TCP)
		assert.Error(t, err, "CanBind(%d)", p)
	}
}

func TestProtoString(t *testing.T) {
	assert.Equal(t, "tcp", netprobe.TCP.String())
	assert.Equal(t, "udp", netprobe.UDP.String())
	assert.Equal(t, "tcp+udp", (netprobe.TCP | netprobe.UDP).String())
	assert.Equal(t, "Proto(8)", netprobe.Proto(8).String())
}

func BenchmarkCanBind(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, p := range []netprobe.Proto{netprobe.TCP, netprobe.TCP | netprobe.UDP} {
		b.Run(p.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := netprobe.CanBind(port, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
