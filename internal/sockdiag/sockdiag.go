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
// On other systems both functions return an error wrapping
// [errors.ErrUnsupported], never a partial answer.
package sockdiag

import "net/netip"

// Socket is one socket listening (TCP) or bound (UDP) on a local port.
type Socket struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Family is 4 for an AF_INET socket and 6 for an AF_INET6 socket
	// (including a dual-stack one bound to [::]).
	Family int
	// Local is the local address and port the socket is bound to.
	Local netip.AddrPort
	// UID is the user id owning the socket.
	UID uint32
	// Inode is the socket's inode number, as in /proc/PID/fd links
	// ("socket:[Inode]"); [Holders] maps it to pids.
	Inode uint64
	// PIDs are the processes holding the socket, in ascending order, as
	// far as this user may see: filled by [Holding] only.
	PIDs []int
}
