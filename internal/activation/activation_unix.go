//go:build unix

package activation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// files makes a File of each descriptor named, checking that it is open.
func files(names []string) ([]*os.File, error) {
	out := make([]*os.File, 0, len(names))
	for i, name := range names {
		fd := FirstFD + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			for _, f := range out {
				f.Close()
			}
			return nil, fmt.Errorf("%w: %s=%d, but descriptor %d is not open: %v", ErrEnv, EnvListenFDs, len(names), fd, err)
		}
		unix.CloseOnExec(fd)
		out = append(out, os.NewFile(uintptr(fd), name))
	}
	return out, nil
}

// UnixListener makes a listener of f, a Unix stream socket that listens
// (the kind a socket unit with ListenStream=/path makes), and closes f. It
// fails with what f is instead when it is anything else.
func UnixListener(f *os.File) (*net.UnixListener, error) {
	defer f.Close()
	if err := checkUnixStreamListener(int(f.Fd())); err != nil {
		return nil, fmt.Errorf("socket %q (fd %d): %w", f.Name(), f.Fd(), err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("socket %q (fd %d): %w", f.Name(), f.Fd(), err)
	}
	return l.(*net.UnixListener), nil
}

// checkUnixStreamListener says why fd is not a listening Unix stream
// socket, or returns nil.
func checkUnixStreamListener(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("not a socket: want a listening Unix stream socket (ListenStream=/path)")
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	if _, ok := sa.(*unix.SockaddrUnix); !ok {
		return fmt.Errorf("a %s socket, not a Unix one: want a listening Unix stream socket (ListenStream=/path)", family(sa))
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("getsockopt SO_TYPE: %w", err)
	}
	if typ != unix.SOCK_STREAM {
		kind := map[int]string{unix.SOCK_DGRAM: "datagram", unix.SOCK_SEQPACKET: "seqpacket"}[typ]
		return fmt.Errorf("a Unix %s socket, not a stream one: want ListenStream=, not ListenDatagram= or ListenSequentialPacket=", cmpOr(kind, "non-stream"))
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ACCEPTCONN: %w", err)
	}
	if acc == 0 {
		return errors.New("a Unix stream socket that is not listening (a connection, or Accept=yes in the socket unit): want Accept=no")
	}
	return nil
}

func family(sa unix.Sockaddr) string {
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return "TCP/IPv4"
	case *unix.SockaddrInet6:
		return "TCP/IPv6"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", sa), "*unix.Sockaddr")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Notify sends state (such as "READY=1" or "STOPPING=1"; several
// assignments are separated by newlines) to the service manager at
// NOTIFY_SOCKET. It returns false and no error when NOTIFY_SOCKET is
// unset: the process was not started by one that listens. The variable is
// kept, for later notifications.
func Notify(state string) (sent bool, err error) {
	addr := os.Getenv(EnvNotifySocket)
	if addr == "" {
		return false, nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return false, fmt.Errorf("notify %s=%q: want a socket path or @name (vsock is not supported)", EnvNotifySocket, addr)
	}
	// Go's net package writes a leading @ as the NUL of an abstract name.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify %s: %w", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notify %s: %w", addr, err)
	}
	return true, nil
}

// Writable says why descriptor fd, given by a parent (systemd's
// --ready-fd style), cannot be written to, or returns nil. A descriptor
// open for reading only is no such channel: the Go runtime itself keeps
// files open (its cgroup CPU limit, since Go 1.25) at the lowest numbers a
// parent left free.
func Writable(fd int) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return errors.New("not an open file descriptor")
	}
	if fl&unix.O_ACCMODE == unix.O_RDONLY {
		return errors.New("not an open file descriptor for writing (one open for reading only is not the parent's)")
	}
	return nil
}
