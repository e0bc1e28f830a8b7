//go:build unix && !linux

package registry

import (
	"slices"

	"github.com/portfor/portfor/internal/sockdiag"
)

// pin does nothing: there are no pidfds here.
func pin(*target) sendResult { return sent }

func unpin(*target) {}

// sendSignal sends sig to t if t is still the process found and still
// holds one of the port's sockets, with kill(2): there are no pidfds here.
func sendSignal(t *target, sig stopSignal) sendResult { return killChecked(t, sig) }

// holds reports whether t is still among the holders of one of its
// sockets, asking for the port's holders again.
func holds(t *target) bool {
	socks, err := sockdiag.Holding(t.port)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(socks, func(s sockdiag.Socket) bool {
		return slices.Contains(t.inodes, s.Inode) && slices.Contains(s.PIDs, t.pid)
	})
}
