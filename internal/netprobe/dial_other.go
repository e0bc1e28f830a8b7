//go:build !linux

package netprobe

import (
	"context"
	"net/netip"
)

// acceptingLoopback defers to the net package elsewhere.
func acceptingLoopback(context.Context, netip.Addr, int) (ok, done bool, err error) {
	return false, false, nil
}
