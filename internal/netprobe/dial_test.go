package netprobe_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/netprobe"
)

func TestAccepting(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	v4 := netip.MustParseAddr("127.0.0.1")
	ctx := context.Background()

	ok, err := netprobe.Accepting(ctx, v4, port)
	require.NoError(t, err)
	assert.True(t, ok, "a listener on 127.0.0.1 accepts")

	ok, err = netprobe.Accepting(ctx, netip.IPv6Loopback(), port)
	require.NoError(t, err)
	assert.False(t, ok, "nothing listens on ::1")

	ok, err = netprobe.Accepting(ctx, netip.MustParseAddr("::ffff:127.0.0.1"), port)
	require.NoError(t, err)
	assert.True(t, ok, "an IPv4-mapped address reaches the IPv4 listener")

	require.NoError(t, l.Close())
	ok, err = netprobe.Accepting(ctx, v4, port)
	require.NoError(t, err)
	assert.False(t, ok, "refused once closed")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = netprobe.Accepting(cctx, v4, port)
	assert.ErrorIs(t, err, context.Canceled)

	dctx, dcancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer dcancel()
	_, err = netprobe.Accepting(dctx, v4, port)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestBindAddrOnForeignAddress(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is no address of this host: bind fails without any traffic.
	_, err := netprobe.BindAddr(netip.MustParseAddr("192.0.2.1"), 40000, netprobe.TCP)
	assert.ErrorIs(t, err, netprobe.ErrAddrNotAvailable)
	_, err = netprobe.BindAddr(netip.MustParseAddr("127.0.0.1"), 40000, netprobe.Proto(4))
	assert.Error(t, err)
	ok, err := netprobe.CanBindAddrs([]netip.Addr{netip.MustParseAddr("192.0.2.1")}, 40000, netprobe.TCP)
	require.NoError(t, err)
	assert.True(t, ok, "addresses the host lacks are skipped")
}
