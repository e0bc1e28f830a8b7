//go:build unix

package registry

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/activation"
)

// inherited are the sockets this process was handed by systemd's
// socket-activation protocol (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES),
// read when the package is initialised. Each is given out once; the
// environment is left as it is.
var inherited inheritedSockets

// The descriptors handed over are recorded (their inodes) before the
// program's own code runs: read at the first Listen instead, a descriptor
// the program had opened meanwhile at one of those numbers (its own
// socket, after LISTEN_FDS promised more than was passed) would be taken
// for a handed-over socket and closed behind the program's back.
func init() {
	inherited.once.Do(readInherited)
}

type inheritedSockets struct {
	once sync.Once
	// err is a LISTEN_* environment that breaks the protocol; then no
	// descriptor is touched or taken, and listed are the names
	// LISTEN_FDNAMES gives, whose Listen fails with err.
	err    error
	listed []string
	names  []string // from activation.FirstFD on
	ino    []uint64 // each socket's inode when first read, 0 for a descriptor that was no socket
	mu     sync.Mutex
	taken  []bool
}

// readInherited reads what was handed over and makes each descriptor
// close-on-exec, as sd_listen_fds(3) does: a child started later gets
// none of them unless handed them. An environment that breaks the
// protocol hands nothing over: which descriptor is which, or whether any
// is this process's, cannot be told, so none is touched.
func readInherited() {
	in := &inherited
	fdNames := os.Getenv(activation.EnvListenFDNames)
	in.names, in.err = activation.Parse(os.Getenv(activation.EnvListenPID), os.Getenv(activation.EnvListenFDs),
		fdNames, os.Getpid())
	if in.err != nil {
		in.names = nil
		in.listed = []string{activation.UnknownName} // every descriptor's name when none is given
		if fdNames != "" {
			in.listed = strings.Split(fdNames, ":")
		}
		return
	}
	in.ino = make([]uint64, len(in.names))
	in.taken = make([]bool, len(in.names))
	for i := range in.names {
		fd := activation.FirstFD + i
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			in.ino[i] = st.Ino
			unix.CloseOnExec(fd)
		}
	}
}

// inheritedSocket returns the socket named name that was handed to this
// process, of the kind proto asks for (a listening stream socket for TCP,
// a datagram socket for UDP), as a net.Listener or net.PacketConn; nil
// when there is none, or none left. Its descriptor is closed (the
// listener has a copy), so each is returned once. When the environment
// breaks the protocol, nothing was handed over, but a name it lists is an
// error wrapping ErrActivationEnv: the parent meant to hand a socket over
// as name, and one bound here instead would be a socket no client of the
// parent's is told of.
func inheritedSocket(name string, proto Protocol) (io.Closer, error) {
	in := &inherited
	in.once.Do(readInherited)
	if in.err != nil {
		if slices.Contains(in.listed, name) {
			return nil, fmt.Errorf("a socket named %q may have been handed over, but none is taken and none bound: %w", name, in.err)
		}
		return nil, nil
	}
	if len(in.names) == 0 {
		return nil, nil
	}
	f := in.take(name, proto)
	if f == nil {
		return nil, nil
	}
	defer f.Close()
	var s io.Closer
	var err error
	if proto == UDP {
		s, err = net.FilePacketConn(f)
	} else {
		s, err = net.FileListener(f)
	}
	if err != nil {
		return nil, fmt.Errorf("socket handed over as %s (fd %d): %w", name, f.Fd(), err)
	}
	return s, nil
}

// take marks the first socket named name of proto's kind that is still
// there and not yet taken as taken, and returns it.
func (in *inheritedSockets) take(name string, proto Protocol) *os.File {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, n := range in.names {
		fd := activation.FirstFD + i
		if n == name && !in.taken[i] && in.ino[i] != 0 && socketOfKind(fd, in.ino[i], proto) {
			in.taken[i] = true
			return os.NewFile(uintptr(fd), name)
		}
	}
	return nil
}

// socketOfKind reports whether fd is still the socket of inode ino (not
// closed and replaced since) and of the kind proto asks for.
func socketOfKind(fd int, ino uint64, proto Protocol) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Ino != ino {
		return false
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return false
	}
	if proto == UDP {
		return typ == unix.SOCK_DGRAM
	}
	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return typ == unix.SOCK_STREAM && err == nil && listening != 0
}

// addrInUse reports whether a bind failed because the address is in use.
func addrInUse(err error) bool { return errors.Is(err, unix.EADDRINUSE) }
