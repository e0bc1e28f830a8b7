package netprobe

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

type probeAddr struct {
	family int
	sa     func(port int) unix.Sockaddr
	name   string
}

var probeAddrs = [...]probeAddr{
	{unix.AF_INET, func(p int) unix.Sockaddr { return &unix.SockaddrInet4{Port: p} }, "0.0.0.0"},
	{unix.AF_INET, func(p int) unix.Sockaddr { return &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}} }, "127.0.0.1"},
	{unix.AF_INET6, func(p int) unix.Sockaddr { return &unix.SockaddrInet6{Port: p} }, "::"},
	{unix.AF_INET6, func(p int) unix.Sockaddr {
		return &unix.SockaddrInet6{Port: p, Addr: [16]byte{15: 1}}
	}, "::1"},
}

func canBind(port int, p Proto) (bool, error) {
	for _, a := range probeAddrs {
		ok, err := bindOnce(a, port, p)
		if err != nil || !ok {
			return ok, err
		}
	}
	return true, nil
}

// bindOnce binds (and for TCP listens on) one address and closes the socket.
func bindOnce(a probeAddr, port int, p Proto) (bool, error) {
	typ := unix.SOCK_STREAM
	if p == UDP {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(a.family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT) {
			return true, nil // no such family on this host: nothing can hold the port there
		}
		return false, fmt.Errorf("probe %s port %d on %s: socket: %w", p, port, a.name, err)
	}
	defer unix.Close(fd)
	if p == TCP {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return false, fmt.Errorf("probe %s port %d on %s: SO_REUSEADDR: %w", p, port, a.name, err)
		}
	}
	if a.family == unix.AF_INET6 {
		// Dual-stack, as Go and most servers bind [::]: also meets IPv4 holders.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	err = unix.Bind(fd, a.sa(port))
	if err == nil && p == TCP {
		err = unix.Listen(fd, 1)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EADDRINUSE), errors.Is(err, unix.EACCES):
		return false, nil
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return true, nil // the host has no such address (IPv6 disabled on loopback)
	}
	return false, fmt.Errorf("probe %s port %d on %s: %w", p, port, a.name, err)
}
