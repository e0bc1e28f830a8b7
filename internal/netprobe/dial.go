package netprobe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Accepting reports whether something accepts TCP connections on ip:port:
// a connection that is made (and closed at once) means yes; a refused one,
// or an address this host cannot reach (IPv6 disabled), means no. It
// returns ctx's error when ctx ends first, and other dial errors
// (unreachable networks, time-outs) as errors. One attempt never outlives ctx.
func Accepting(ctx context.Context, ip netip.Addr, port int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ip.IsLoopback() {
		if ok, done, err := acceptingLoopback(ctx, ip, port); done {
			return ok, err
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
	if err == nil {
		c.Close()
		return true, nil
	}
	return dialResult(ctx, err)
}

// dialResult maps a failed connect to Accepting's answer.
func dialResult(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return false, context.DeadlineExceeded // the dialer saw the deadline before ctx's timer fired
	}
	for _, no := range []error{syscall.ECONNREFUSED, syscall.ENETUNREACH, syscall.EHOSTUNREACH,
		syscall.EADDRNOTAVAIL, syscall.EAFNOSUPPORT} {
		if errors.Is(err, no) {
			return false, nil // refused, or no route: nothing there accepts
		}
	}
	return false, err
}
