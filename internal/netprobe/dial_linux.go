package netprobe

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// maxLoopbackConnect bounds one loopback connect when ctx has no deadline.
const maxLoopbackConnect = time.Second

// acceptingLoopback connects to a loopback address with a plain blocking
// connect: on loopback the answer (accepted or refused) comes back within
// the call, so this avoids the poller round trip of the net package, which
// made up most of the CPU a long wait burns. SO_SNDTIMEO bounds the call
// by ctx's deadline; a connect still pending then means a listener whose
// backlog is full, so something is there. done is false when the raw path
// cannot be used and the caller should dial normally.
func acceptingLoopback(ctx context.Context, ip netip.Addr, port int) (ok, done bool, err error) {
	limit := maxLoopbackConnect
	if dl, has := ctx.Deadline(); has {
		limit = min(limit, time.Until(dl))
		if limit <= 0 {
			return false, true, context.DeadlineExceeded
		}
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr
	if ip.Is4() || ip.Is4In6() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return false, true, nil // no IPv6 here: nothing listens on ::1
		}
		return false, false, nil
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(max(limit, time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return false, false, nil
	}
	err = unix.Connect(fd, sa)
	switch {
	case err == nil:
		return true, true, nil
	case errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ETIMEDOUT):
		if ctx.Err() != nil {
			return false, true, ctx.Err()
		}
		return true, true, nil // a listener that has no room yet is still a listener
	case errors.Is(err, unix.EINTR):
		return false, false, nil
	}
	ok, err = dialResult(ctx, err)
	return ok, true, err
}
