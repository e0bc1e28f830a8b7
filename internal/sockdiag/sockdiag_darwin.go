package sockdiag

import (
	"errors"
	"fmt"
)

// Lookup returns every socket listening (TCP, state LISTEN) or bound (UDP)
// on the local port, IPv4 and IPv6, that lsof shows this user: without
// root, only this user's processes' sockets. PIDs are filled, as by
// [Holding]. An empty result with a nil error means nothing this user can
// see holds the port.
func Lookup(port int) ([]Socket, error) { return lsofHolding([]int{port}) }

// LookupPorts is [Lookup] for several ports at once, in one run of lsof.
func LookupPorts(ports []int) ([]Socket, error) { return lsofHolding(ports) }

// Holding returns the sockets on any of ports with the pids holding each,
// in one run of lsof; see the package doc for what lsof cannot see.
func Holding(ports ...int) ([]Socket, error) { return lsofHolding(ports) }

// Holders is not supported on macOS, where Socket.Inode is no inode but
// the socket's kernel address as lsof shows it: it returns an error wrapping
// [errors.ErrUnsupported]. [Holding] gives sockets with their pids.
func Holders(inodes []uint64) (map[uint64][]int, error) {
	return nil, fmt.Errorf("sockdiag: Holders on macOS (use Holding): %w", errors.ErrUnsupported)
}
