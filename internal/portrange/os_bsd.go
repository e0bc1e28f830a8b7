//go:build darwin || freebsd

package portrange

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func ephemeral() (Range, error) {
	first, err := unix.SysctlUint32("net.inet.ip.portrange.first")
	if err != nil {
		return fallbackEphemeral(), fmt.Errorf("sysctl net.inet.ip.portrange.first: %w", err)
	}
	last, err := unix.SysctlUint32("net.inet.ip.portrange.last")
	if err != nil {
		return fallbackEphemeral(), fmt.Errorf("sysctl net.inet.ip.portrange.last: %w", err)
	}
	r := Range{First: int(first), Last: int(last)}
	if r.First < 1 || r.Last > MaxPort || r.First > r.Last {
		return fallbackEphemeral(), fmt.Errorf("sysctl net.inet.ip.portrange: odd range %d-%d", first, last)
	}
	return r, nil
}

func reserved() (List, error) { return nil, nil }
