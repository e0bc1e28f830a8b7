package registry

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/iana"
	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/store"
)

// chooser picks ports inside one transaction on each file (see session.go).
// It remembers which lease owners it has found alive or dead, so each is
// asked once.
type chooser struct {
	r     *Registry
	t     *txs
	alive map[procinfo.Identity]bool
	// stablePorts stands in for t.main when the registry file was not
	// opened: the ports it holds.
	stablePorts map[int]bool
}

func (r *Registry) newChooser(t *txs, stablePorts map[int]bool) *chooser {
	return &chooser{r: r, t: t, alive: map[procinfo.Identity]bool{}, stablePorts: stablePorts}
}

// ownerAlive reports whether a lease's owner still runs (see alive).
func (c *chooser) ownerAlive(e store.Entry) bool {
	id := leaseOwner(e)
	a, ok := c.alive[id]
	if !ok {
		a = alive(id)
		c.alive[id] = a
	}
	return a
}

// taken reports whether port belongs to an id, in either file. A lease whose
// owner has died does not hold it: where its transaction may write, it is
// deleted on the spot and the port is free again.
func (c *chooser) taken(port int) (bool, error) {
	if c.stablePorts[port] {
		return true, nil
	}
	for _, tx := range []*store.Tx{c.t.main, c.t.leases} {
		if tx == nil {
			continue
		}
		owner, ok := tx.PortOwner(port)
		if !ok {
			continue
		}
		e, found, err := tx.Get(owner)
		if err != nil || !found || e.Kind != store.Lease || !tx.Writable() || c.ownerAlive(e) {
			return true, err
		}
		if _, _, err := c.t.del(tx, owner); err != nil {
			return true, err
		}
	}
	return false, nil
}

// carryOut does what one request asks and returns its ports.
func (c *chooser) carryOut(q request) ([]int, error) {
	if q.Kind == store.Lease {
		return c.lease(q)
	}
	if e, ok, err := c.t.main.Get(q.ID); err != nil || ok {
		if err != nil {
			return nil, err
		}
		if q.bind != nil {
			if err := q.bind.bindKnown(e.Port); err != nil {
				return nil, err
			}
		}
		return []int{e.Port}, nil
	}
	p, err := c.stable(q.ID, q.Suggested, q.bind)
	if err != nil {
		return nil, err
	}
	now := c.r.opts.Now()
	err = c.t.put(c.t.main, store.Entry{ID: q.ID, Port: p, Kind: store.Stable, Created: now, Updated: now, Dir: q.Dir})
	if err != nil {
		return nil, err
	}
	return []int{p}, nil
}

// stable picks a port for a new stable id (see ForwardPort). With b (a
// Listen), a port is usable only once b has bound its socket there.
func (c *chooser) stable(id string, suggested int, b *binder) (int, error) {
	usable := func(port int) (bool, error) {
		if taken, err := c.taken(port); err != nil || taken {
			return false, err
		}
		return b.probe(port, netprobe.TCP)
	}
	if suggested == 0 {
		return c.r.scan(c.r.autoStart(id), c.r.goodForAuto, usable)
	}
	if ok, err := usable(suggested); err != nil || ok {
		return suggested, err
	}
	return c.r.scan(suggested+1, c.r.goodNear, usable)
}

// MinPort is the lowest port portfor assigns on its own: below it, binding
// needs privileges.
const MinPort = 1024

// osRanges reads the OS's ephemeral and reserved ports once per handle.
// A failure to read them leaves the documented fallbacks in place.
func (r *Registry) osRanges() (portrange.Range, portrange.List) {
	r.rangesOnce.Do(func() {
		r.ephemeral, _ = portrange.Ephemeral()
		r.reserved, _ = portrange.Reserved()
	})
	return r.ephemeral, r.reserved
}

// IsEphemeral reports whether port lies in the OS's ephemeral range, from
// which the kernel picks ports for outgoing connections: a service there may
// find its port taken by a client connection.
func (r *Registry) IsEphemeral(port int) bool {
	eph, _ := r.osRanges()
	return eph.Contains(port)
}

// goodForAuto reports whether port may be picked without being asked for by
// number: not privileged, not ephemeral, not reserved, not IANA-registered.
func (r *Registry) goodForAuto(port int) bool {
	eph, reserved := r.osRanges()
	return port >= MinPort && port <= portrange.MaxPort && !eph.Contains(port) &&
		!reserved.Contains(port) && !iana.Registered(port)
}

// autoStart maps id onto the ports outside the ephemeral range, so that one
// name starts its search at the same port on hosts with the same range.
func (r *Registry) autoStart(id string) int {
	eph, _ := r.osRanges()
	h := fnv.New32a()
	h.Write([]byte(id))
	below := max(0, min(eph.First, portrange.MaxPort+1)-MinPort) // ports MinPort..eph.First-1
	above := max(0, portrange.MaxPort-max(eph.Last, MinPort-1))  // ports eph.Last+1..MaxPort
	n := below + above
	if n == 0 {
		return MinPort
	}
	i := int(h.Sum32() % uint32(n))
	if i < below {
		return MinPort + i
	}
	return max(eph.Last, MinPort-1) + 1 + (i - below)
}

// goodNear reports whether port may stand in for a suggested port that is
// taken: as goodForAuto, but IANA-registered ports are fine (people asked
// for 3000 expect 3001, and most ports near a suggestion are registered to
// something nobody runs), while the usual ports of common local services
// are not (see commonPorts).
func (r *Registry) goodNear(port int) bool {
	eph, reserved := r.osRanges()
	return port >= MinPort && port <= portrange.MaxPort && !eph.Contains(port) &&
		!reserved.Contains(port) && !isCommonPort(port)
}

// scan returns the first port from start upward, wrapping once from MaxPort
// to MinPort, that good accepts and that passes usable.
func (r *Registry) scan(start int, good func(int) bool, usable func(int) (bool, error)) (int, error) {
	start = max(start, MinPort)
	span := portrange.MaxPort - MinPort + 1
	for i := 0; i < span; i++ {
		port := MinPort + (start-MinPort+i)%span
		if !good(port) {
			continue
		}
		ok, err := usable(port)
		if err != nil {
			return 0, err
		}
		if ok {
			return port, nil
		}
	}
	return 0, ErrNoPortAvailable
}

// leaseID names the lease entry on port: ':' never appears in user ids.
func leaseID(port int) string { return "lease:" + strconv.Itoa(port) }

// IsLeaseID reports whether id names a lease entry ("lease:PORT").
func IsLeaseID(id string) bool { return strings.HasPrefix(id, "lease:") }

// lease picks and records q.Count ports for q.Owner.
// The owner was looked up when the request was made (pending requests of
// dead owners are dropped before a batch starts).
func (c *chooser) lease(q request) ([]int, error) {
	ports := make([]int, 0, q.Count)
	now := c.r.opts.Now()
	for len(ports) < q.Count {
		p, err := c.leasePort(q)
		if err != nil {
			for _, done := range ports { // all or none
				if _, _, derr := c.t.del(c.t.leases, leaseID(done)); derr != nil {
					return nil, derr
				}
			}
			return nil, err
		}
		e := store.Entry{ID: leaseID(p), Port: p, Kind: store.Lease, Created: now, Updated: now,
			OwnerPID: q.Owner.PID, OwnerStart: q.Owner.Start, OwnerNS: q.Owner.NS, Dir: q.Dir, Command: q.Command, Request: q.Token}
		if err := c.t.put(c.t.leases, e); err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// leasePort finds one port for a lease: in q.Ports when given, else
// anywhere from MinPort up; not privileged, not ephemeral, not reserved,
// held by no stable assignment or live lease, and free on TCP and UDP on
// every server address. The search starts at q.Suggested (Near) or at a
// random point, so that concurrent leases spread out.
func (c *chooser) leasePort(q request) (int, error) {
	list := q.Ports
	if len(list) == 0 {
		list = PortList{{First: MinPort, Last: portrange.MaxPort}}
	}
	eph, reserved := c.r.osRanges()
	// Search only where a lease may go: a random start that fell into the
	// ephemeral range would otherwise slide to its end, and leases would
	// pile up there, each new one stepping over all the others.
	list = list.Without(PortRange{First: 0, Last: MinPort - 1}).Without(eph)
	total := list.Len()
	if total == 0 {
		return 0, fmt.Errorf("%w in %s (all of it privileged or ephemeral)", ErrNoPortAvailable, q.Ports)
	}
	offset := rand.IntN(total)
	if q.Suggested != 0 {
		offset = list.Index(q.Suggested)
	}
	for i := 0; i < total; i++ {
		port := list.At((offset + i) % total)
		if reserved.Contains(port) {
			continue
		}
		if taken, err := c.taken(port); err != nil || taken {
			if err != nil {
				return 0, err
			}
			continue
		}
		free, err := q.bind.probe(port, netprobe.TCP|netprobe.UDP)
		if err != nil {
			return 0, err
		}
		if free {
			return port, nil
		}
	}
	if len(q.Ports) > 0 {
		return 0, fmt.Errorf("%w in %s", ErrNoPortAvailable, q.Ports)
	}
	return 0, ErrNoPortAvailable
}
