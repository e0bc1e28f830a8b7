// Package sockdiag finds the sockets listening (TCP) or bound (UDP) on one
// local port, and the processes holding them.
//
// On Linux, [Lookup] asks the kernel through netlink NETLINK_SOCK_DIAG
// (SOCK_DIAG_BY_FAMILY dumps with struct inet_diag_req_v2), one dump per
// protocol and family (tcp4, tcp6, udp4, udp6), on a single netlink socket.
// The kernel does the filtering: the TCP dumps ask for the LISTEN state only
// (so the kernel never walks the established hash, where TIME_WAIT sockets
// live), and every dump carries an INET_DIAG_REQ_BYTECODE filter
// (INET_DIAG_BC_S_GE and INET_DIAG_BC_S_LE on the source port, which every
// kernel since 2.6 accepts, where INET_DIAG_BC_S_EQ needs 4.17) so sockets
// on other ports are never sent. /proc/net/tcp is never read: it lists every
// socket of the host and took 38–97 ms with 60,000 sockets in TIME_WAIT.
//
// [Holders] maps socket inodes to the pids that hold them by reading the
// /proc/PID/fd links ("socket:[INODE]").
//
// The netlink messages are written here with golang.org/x/sys/unix rather
// than through a library because no well-kept Go netlink library offers the
// kernel-side port filter: github.com/vishvananda/netlink (socket_linux.go,
// read at commit 06219cde) has SocketDiagTCP/SocketDiagUDP(family), which
// dump every socket of the family in all states (idiag_states 0xfff), and
// SocketGet for one exact 4-tuple; its request type has no room for
// attributes, so no INET_DIAG_REQ_BYTECODE, and no state or port argument.
// Filtering its answers in the process would copy all 50,000 TIME_WAIT
// sockets out of the kernel on every call. The messages needed are three
// fixed structs and one attribute, about 150 lines.
//
// On macOS, which has no sock_diag and no /proc, [Holding], [Lookup] and
// [LookupPorts] run lsof once (internal/lsof: from PATH, else
// /usr/sbin/lsof; at most 30 s and 4 MiB of output) for the TCP and UDP
// sockets on the ports, "lsof -n -P -w -Ts -F pfutdiPnT -iTCP:PORTS
// -iUDP:PORTS", and read its field output. lsof lists a socket once per
// descriptor holding it; the kernel address it shows as the socket's device
// makes one Socket of them, with every pid. Not -sTCP:LISTEN, which would
// also hide every UDP socket: the TCP sockets not listening, and the
// sockets lsof lists for their remote port, are dropped here. The limits:
// lsof lists only the processes this user may inspect, so without root the
// sockets of other users' processes are not seen at all (on Linux they come
// with no pids: registry.Who's Hidden); UID is the uid lsof reports for the
// socket's holder, the one with the lowest pid, not the socket's own; and
// [Holders] returns an error wrapping [errors.ErrUnsupported]. The lsof
// reader is built on Linux too, where tests check its answers against
// netlink's.
//
// On other systems every function returns an error wrapping
// [errors.ErrUnsupported], never a partial answer.
package sockdiag

import (
	"fmt"
	"net/netip"
)

// Socket is one socket listening (TCP) or bound (UDP) on a local port.
type Socket struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Family is 4 for an AF_INET socket and 6 for an AF_INET6 socket
	// (including a dual-stack one bound to [::]).
	Family int
	// Local is the local address and port the socket is bound to.
	Local netip.AddrPort
	// UID is the user id owning the socket (on macOS, the uid of the
	// process holding it with the lowest pid).
	UID uint32
	// Inode is the socket's inode number, as in /proc/PID/fd links
	// ("socket:[Inode]"); [Holders] maps it to pids. On macOS it is the
	// socket's kernel address as lsof shows it, which only tells sockets
	// apart.
	Inode uint64
	// PIDs are the processes holding the socket, in ascending order, as
	// far as this user may see: filled by [Holding] only (on macOS by
	// every lookup).
	PIDs []int
}

// portSet checks ports, each 1-65535, and returns them as a set.
func portSet(ports []int) (map[uint16]bool, error) {
	want := make(map[uint16]bool, len(ports))
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("sockdiag: port %d out of range 1-65535", p)
		}
		want[uint16(p)] = true
	}
	return want, nil
}
