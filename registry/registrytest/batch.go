package registrytest

import (
	"context"
	"sync"

	"github.com/portfor/portfor/registry"
)

// Parallel tests ask for ports at the same moment. Asked one by one, each
// would wait for the registry's lock on its own, polling it: 50 waiters in
// each of 8 test binaries spent most of the machine on polling (perf), and
// the last port came seconds after the first. So the asks of one process
// go out together: while one LeaseN is under way the others queue, and the
// next LeaseN takes all of them at once (up to registry.MaxLeaseN ports),
// one waiter and one transaction for many tests.
//
// Releases, which parallel tests make together as they end, take their
// turn with the leases: one registry call at a time per process, so that
// its goroutines never poll the lock against each other.

// turn is held for each call on a registry of leases or releases.
var turn sync.Mutex

// batcher gathers the asks of one registry.
type batcher struct {
	reg *registry.Registry

	mu    sync.Mutex
	queue []*ask
	busy  bool // a caller is carrying out the queue
}

// ask is one caller's request for n ports, answered when done is closed.
type ask struct {
	n      int
	done   chan struct{}
	leases []registry.Assignment
	err    error
}

var (
	batchersMu sync.Mutex
	batchers   = map[*registry.Registry]*batcher{}
)

// leaseBatched leases n ports (at most registry.MaxLeaseN) from reg for
// this process, together with whatever other goroutines ask for meanwhile.
func leaseBatched(reg *registry.Registry, n int) ([]registry.Assignment, error) {
	batchersMu.Lock()
	b := batchers[reg]
	if b == nil {
		b = &batcher{reg: reg}
		batchers[reg] = b
	}
	batchersMu.Unlock()
	return b.lease(n)
}

func (b *batcher) lease(n int) ([]registry.Assignment, error) {
	a := &ask{n: n, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, a)
	if b.busy {
		b.mu.Unlock()
		<-a.done
		return a.leases, a.err
	}
	b.busy = true
	for len(b.queue) > 0 {
		batch, total := b.take()
		b.mu.Unlock()
		// Not the asking test's context: the leases are for every test in
		// the batch, and the lock wait has its own bound.
		turn.Lock()
		leases, err := b.reg.LeaseN(context.Background(), total, registry.LeaseOptions{})
		turn.Unlock()
		for _, x := range batch {
			if err != nil {
				x.err = err
			} else {
				x.leases, leases = leases[:x.n:x.n], leases[x.n:]
			}
			close(x.done)
		}
		b.mu.Lock()
	}
	b.busy = false
	b.mu.Unlock()
	return a.leases, a.err
}

// take removes from the queue the asks the next LeaseN serves: the first,
// and those after it while they fit in registry.MaxLeaseN ports.
func (b *batcher) take() ([]*ask, int) {
	total, i := b.queue[0].n, 1
	for ; i < len(b.queue) && total+b.queue[i].n <= registry.MaxLeaseN; i++ {
		total += b.queue[i].n
	}
	batch := b.queue[:i:i]
	b.queue = b.queue[i:]
	return batch, total
}
