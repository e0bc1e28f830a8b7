package registrytest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

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
//
// A test binary that asks again and again (a port per test, one test after
// another) leases ahead: each LeaseN takes a few ports more than asked,
// as many as the binary has been handed so far, up to maxAhead, and the
// next asks are served from those. A port is a transaction on the
// registry's files, about two thirds of what a port costs a test; leasing
// ahead makes most asks cost none, while the port still goes back to the
// registry at the test's cleanup. A binary that asks once leases nothing
// ahead. A port leased ahead is checked again (free on TCP and UDP) when it
// is handed out, as the lease checked it: another program may have taken
// it meanwhile. Those not handed out end with the process, as any lease
// of a process that is gone.

// turn is held for each call on a registry of leases or releases.
var turn sync.Mutex

const (
	// maxAhead is the most ports a batcher leases ahead.
	maxAhead = 7
	// fresh is how long the check of a port leased ahead stands: within
	// it, the port is handed out as a lease would hand it out. Another
	// portfor user cannot take it meanwhile; another program could, by
	// binding its number.
	fresh = time.Second
)

// batcher gathers the asks of one registry.
type batcher struct {
	reg *registry.Registry

	mu     sync.Mutex
	queue  []*ask
	busy   bool         // a caller is carrying out the queue
	ahead  []aheadLease // leased ahead, not yet handed out
	served int          // ports handed out, which sizes what is leased ahead
}

// aheadLease is a port leased ahead, and when: it is checked again when
// handed out later than fresh after that.
type aheadLease struct {
	registry.Assignment
	at time.Time
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
	got := b.fromAhead(n)
	if len(got) == n {
		return got, nil
	}
	more, err := b.leaseQueued(n - len(got))
	if err != nil {
		b.mu.Lock()
		for _, a := range got {
			b.ahead = append(b.ahead, aheadLease{a, time.Time{}}) // checked when handed out
		}
		b.mu.Unlock()
		return nil, err
	}
	return append(got, more...), nil
}

// fromAhead hands out up to n of the ports leased ahead that can still be
// bound. One that cannot (another program took it meanwhile) is given
// back to the registry, which checks it again before it leases it again.
func (b *batcher) fromAhead(n int) []registry.Assignment {
	b.mu.Lock()
	k := min(n, len(b.ahead))
	took := slices.Clone(b.ahead[len(b.ahead)-k:])
	b.ahead = b.ahead[:len(b.ahead)-k]
	b.served += n
	b.mu.Unlock()
	var got []registry.Assignment
	for _, x := range took {
		if time.Since(x.at) < fresh {
			got = append(got, x.Assignment)
			continue
		}
		if ok, err := registry.CanBind(x.Port, registry.TCP|registry.UDP); ok && err == nil {
			got = append(got, x.Assignment)
			continue
		}
		turn.Lock()
		b.reg.ReleaseLease(context.Background(), x.Assignment) // at worst it ends with the process
		turn.Unlock()
	}
	return got
}

// leaseQueued leases n ports with LeaseN, together with the other
// goroutines that ask meanwhile, and leases ahead.
func (b *batcher) leaseQueued(n int) ([]registry.Assignment, error) {
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
		extra := min(b.served-total, maxAhead-len(b.ahead), registry.MaxLeaseN-total)
		extra = max(extra, 0)
		b.mu.Unlock()
		// Not the asking test's context: the leases are for every test in
		// the batch, and the lock wait has its own bound.
		turn.Lock()
		leases, err := b.reg.LeaseN(context.Background(), total+extra, registry.LeaseOptions{})
		if errors.Is(err, registry.ErrNoPortAvailable) && extra > 0 {
			extra = 0 // the ports asked for may still be there
			leases, err = b.reg.LeaseN(context.Background(), total, registry.LeaseOptions{})
		}
		turn.Unlock()
		if err == nil {
			now := time.Now()
			b.mu.Lock()
			for _, a := range leases[total:] {
				b.ahead = append(b.ahead, aheadLease{a, now})
			}
			b.mu.Unlock()
			leases = leases[:total]
		}
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
