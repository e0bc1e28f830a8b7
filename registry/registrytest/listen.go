package registrytest

import (
	"context"
	"net"

	"github.com/portfor/portfor/registry"
)

// listenLeased leases a port for this process, bound on 127.0.0.1 while
// the registry is locked (registry.ListenLease), so that no other portfor
// user can take it between the choice and the bind; closing the listener
// ends the lease. The lease outlives the test's context: it ends at Close.
func listenLeased(ctx context.Context, reg *registry.Registry) (net.Listener, error) {
	return reg.ListenLease(context.WithoutCancel(ctx), registry.ListenOptions{})
}
