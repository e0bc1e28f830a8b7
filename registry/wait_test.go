//go:build unix

package registry_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/registry"
)

func withTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func localhost(port int) registry.HostPort { return registry.HostPort{Host: "localhost", Port: port} }

func TestChecksAndWaitsSeeEveryKindOfListener(t *testing.T) {
	type listener struct{ network, addr string }
	cases := []struct {
		l        listener
		busyOn   []string // hosts on which the port accepts connections
		freeOn   []string // hosts on which nothing accepts
		needsIP6 bool
	}{
		{listener{"tcp4", "127.0.0.1:0"}, []string{"localhost", "127.0.0.1", "0.0.0.0"}, []string{"::1"}, false},
		{listener{"tcp4", "0.0.0.0:0"}, []string{"localhost", "127.0.0.1"}, []string{"::1"}, false},
		{listener{"tcp6", "[::1]:0"}, []string{"localhost", "::1", "::"}, []string{"127.0.0.1"}, true},
		{listener{"tcp", "[::]:0"}, []string{"localhost", "::1", "127.0.0.1"}, nil, true}, // dual-stack
	}
	for _, c := range cases {
		t.Run(c.l.addr, func(t *testing.T) {
			if c.needsIP6 && !hasIPv6() {
				t.Skip("no IPv6 here")
			}
			ln, err := net.Listen(c.l.network, c.l.addr)
			require.NoError(t, err)
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port

			for _, host := range c.busyOn {
				addr := registry.HostPort{Host: host, Port: port}
				free, err := registry.IsFree(ctx, addr)
				require.NoError(t, err)
				assert.False(t, free, "%s must be occupied", addr)
				err = registry.AssertFree(ctx, addr)
				require.ErrorIs(t, err, registry.ErrPortInUse, "%s", addr)
				var pe *registry.PortInUseError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, addr, pe.Addr)
				assert.True(t, pe.IP.IsLoopback(), "a client reaches it on loopback, got %s", pe.IP)
				require.NoError(t, registry.WaitOccupied(withTimeout(t, 10*time.Second), addr), "%s", addr)
			}
			for _, host := range c.freeOn {
				free, err := registry.IsFree(ctx, registry.HostPort{Host: host, Port: port})
				require.NoError(t, err)
				assert.True(t, free, "nothing accepts on %s:%d", host, port)
			}
			ok, err := registry.CanBind(port, registry.TCP)
			require.NoError(t, err)
			assert.False(t, ok, "a server could not bind %d while %s listens", port, c.l.addr)
			err = registry.WaitFree(withTimeout(t, 30*time.Millisecond), localhost(port))
			require.ErrorIs(t, err, registry.ErrTimeout)
		})
	}
}

func TestBoundButNotListeningSocket(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port

	free, err := registry.IsFree(ctx, localhost(port))
	require.NoError(t, err)
	assert.True(t, free, "nothing accepts connections: free in portend's sense")
	ok, err := registry.CanBind(port, registry.TCP)
	require.NoError(t, err)
	assert.False(t, ok, "but a server could not bind it")
	err = registry.WaitFree(withTimeout(t, 30*time.Millisecond), localhost(port))
	assert.ErrorIs(t, err, registry.ErrTimeout, "WaitFree waits for a bindable port")
}

func TestWaitFreeAcceptsTimeWait(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	s := <-accepted
	require.NotNil(t, s)
	require.NoError(t, s.Close()) // server closes first: its side goes to TIME_WAIT
	_, _ = c.Read(make([]byte, 1))
	c.Close()
	ln.Close()

	require.NoError(t, registry.WaitFree(withTimeout(t, 10*time.Second), localhost(port)))
	again, err := net.Listen("tcp4", ln.Addr().String())
	require.NoError(t, err, "after WaitFree a server can bind the port again")
	again.Close()
}

func TestWaitOccupiedSeesAListenerThatAppearsLater(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		if network == "tcp6" && !hasIPv6() {
			continue
		}
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1"
			if network == "tcp6" {
				host = "::1"
			}
			port := freePort(t)
			done := make(chan error, 1)
			go func() { done <- registry.WaitOccupied(withTimeout(t, 30*time.Second), localhost(port)) }()
			select {
			case err := <-done:
				t.Fatalf("wait returned before anything listened: %v", err)
			default:
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
			require.NoError(t, err)
			defer ln.Close()
			require.NoError(t, <-done)
		})
	}
}

func TestWaitFreeSeesAListenerGoAway(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		ln, err = net.Listen("tcp4", "0.0.0.0:0")
	}
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	done := make(chan error, 1)
	go func() { done <- registry.WaitFree(withTimeout(t, 30*time.Second), localhost(port)) }()
	select {
	case err := <-done:
		t.Fatalf("WaitFree returned while the port was held: %v", err)
	default:
	}
	require.NoError(t, ln.Close())
	require.NoError(t, <-done)
}

func TestWaitTimesOutWithPortendsMessage(t *testing.T) {
	port := freePort(t)
	start := time.Now()
	err := registry.WaitOccupied(withTimeout(t, 50*time.Millisecond), localhost(port))
	require.ErrorIs(t, err, registry.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var we *registry.WaitError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, "occupied", we.State)
	assert.GreaterOrEqual(t, we.Waited, 45*time.Millisecond)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Regexp(t, fmt.Sprintf(`^Port %d not bound on localhost \(waited \d+ms\)\.$`, port), err.Error())

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = registry.WaitFree(withTimeout(t, 20*time.Millisecond), localhost(ln.Addr().(*net.TCPAddr).Port))
	require.ErrorIs(t, err, registry.ErrTimeout)
	assert.Regexp(t, `^Port \d+ not free on localhost \(waited \d+ms\)\.$`, err.Error())
}

func TestCancelStopsAWaitAtOnce(t *testing.T) {
	port := freePort(t)
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- registry.WaitOccupied(cctx, localhost(port)) }()
	start := time.Now()
	cancel()
	err := <-done
	assert.Less(t, time.Since(start), time.Second)
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, registry.ErrTimeout)
	assert.Contains(t, err.Error(), "canceled after")
}

func TestUnresolvableHostFails(t *testing.T) {
	err := registry.WaitOccupied(withTimeout(t, 5*time.Second), registry.HostPort{Host: "no-such-host.invalid", Port: 80})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such-host.invalid")
	assert.NotErrorIs(t, err, registry.ErrTimeout)
}

func TestFindFree(t *testing.T) {
	reg := mustOpen(t)
	base := quietRun(t, reg, 4)
	held, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", base))
	require.NoError(t, err)
	defer held.Close()
	require.NoError(t, reg.Bind(ctx, "assigned", base+1))

	list, err := registry.ParsePorts(fmt.Sprintf("80-81,%d-%d", base, base+3))
	require.NoError(t, err)
	p, err := reg.FindFree(ctx, list, registry.FindOptions{})
	require.NoError(t, err)
	assert.Equal(t, base+2, p, "skips ports below 1024, the held one and the assigned one")

	only, err := registry.ParsePorts(fmt.Sprintf("%d-%d", base, base+1))
	require.NoError(t, err)
	_, err = reg.FindFree(ctx, only, registry.FindOptions{})
	require.ErrorIs(t, err, registry.ErrNoPortAvailable)
	assert.Contains(t, err.Error(), only.String())

	any, err := reg.FindFree(ctx, only, registry.FindOptions{AnyPort: true})
	require.NoError(t, err)
	assert.NotEqual(t, base, any)
	assert.NotEqual(t, base+1, any)
	ok, err := registry.CanBind(any, registry.TCP)
	require.NoError(t, err)
	assert.True(t, ok)

	_, err = registry.ParsePorts("8000-")
	assert.ErrorIs(t, err, registry.ErrInvalidPort)
}

func TestFindAvailableLocal(t *testing.T) {
	p, err := registry.FindAvailableLocal()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
	require.NoError(t, err, "the port is bindable on all addresses")
	ln.Close()
}

func TestResolveTargets(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "web", 18080))
	for target, want := range map[string]registry.HostPort{
		"web":            localhost(18080),
		"8080":           localhost(8080),
		":9000":          localhost(9000),
		"[::1]:80":       {Host: "::1", Port: 80},
		"127.0.0.1:8080": {Host: "127.0.0.1", Port: 8080},
	} {
		got, err := reg.Resolve(ctx, target)
		require.NoError(t, err, target)
		assert.Equal(t, want, got, target)
	}
	_, err := reg.Resolve(ctx, "nope")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	_, err = reg.Resolve(ctx, "host:http")
	assert.ErrorIs(t, err, registry.ErrInvalidAddress)
}

func TestWaitOnWildcardTargetUsesClientAddress(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, registry.WaitOccupied(withTimeout(t, 10*time.Second), registry.HostPort{Host: "0.0.0.0", Port: port}))
	_ = netip.Addr{}
}
