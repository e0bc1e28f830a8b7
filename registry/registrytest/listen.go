package registrytest

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/portfor/portfor/registry"
)

// listenLeased: replaced by reg.ListenLease when it lands
//
// listenLeased leases a port for this process and binds it on 127.0.0.1;
// closing the listener ends the lease.
func listenLeased(ctx context.Context, reg *registry.Registry) (net.Listener, error) {
	ctx = context.WithoutCancel(ctx) // the lease ends at Close, after the test's context
	a, err := reg.Lease(ctx, registry.LeaseOptions{})
	if err != nil {
		return nil, err
	}
	l, err := listenLocal(a.Port)
	if err != nil {
		_ = reg.ReleaseLease(ctx, a)
		return nil, err
	}
	ll := &leasedListener{Listener: l}
	ll.release = sync.OnceValue(func() error {
		if err := reg.ReleaseLease(ctx, a); !errors.Is(err, registry.ErrNotFound) {
			return err
		}
		return nil
	})
	return ll, nil
}

// leasedListener ends its lease when it is closed.
type leasedListener struct {
	net.Listener
	release func() error
}

func (l *leasedListener) Close() error {
	err := l.Listener.Close()
	return errors.Join(err, l.release())
}
