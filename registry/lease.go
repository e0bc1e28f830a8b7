package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

// MaxLeaseN is the most ports one LeaseN call takes.
const MaxLeaseN = 64

var (
	// ErrNoOwner is returned when a lease's owner process does not exist.
	ErrNoOwner = errors.New("owner process does not exist")
	// ErrInitOwner is returned for a lease asked for pid 1, which never
	// exits, so that the lease would never end.
	ErrInitOwner = errors.New("pid 1 cannot own a lease: it never exits, so the lease would never end")
)

// LeaseOptions say whose lease it is and where to look. The zero value
// leases one port anywhere suitable for the calling process.
type LeaseOptions struct {
	// OwnerPID is the process the lease belongs to; 0 means the caller. The
	// lease lasts until released, or until that process is gone (its pid
	// and start time no longer match), after which the next allocation
	// that meets the port, or Reclaim, takes it back.
	OwnerPID int
	// OwnerStart, when set, is the start time the owner must have (as
	// procinfo reports it): a caller that checked a process can be sure the
	// lease goes to that process and not to a later one with the same pid.
	OwnerStart uint64
	// Near is where to start looking (the nearest suitable port at or
	// above it, wrapping); 0 means a random point, to spread leases out.
	Near int
	// Ports restricts the search to these ports (nil: 1024-65535).
	Ports PortList
}

// Lease holds one port for an owner process and returns it. The port is
// free on TCP and UDP, IPv4 and IPv6 (see [CanBind]), outside the OS
// ephemeral range and ip_local_reserved_ports, and held by no stable
// assignment and no live lease. It is recorded as a [Lease]-kind
// assignment with id "lease:PORT", the owner's pid, start time, working
// directory and command line.
func (r *Registry) Lease(ctx context.Context, opts LeaseOptions) (Assignment, error) {
	as, err := r.LeaseN(ctx, 1, opts)
	if err != nil {
		return Assignment{}, err
	}
	return as[0], nil
}

// LeaseN holds n distinct ports (1 to [MaxLeaseN]) for one owner, as
// [Registry.Lease] does, in one transaction: all or none.
func (r *Registry) LeaseN(ctx context.Context, n int, opts LeaseOptions) ([]Assignment, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	q, err := leaseRequest(n, opts)
	if err != nil {
		return nil, err
	}
	ports, err := r.submit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return r.leaseAssignments(q, ports), nil
}

// LeaseEach leases one port for each of opts in a single transaction, so
// that one disk sync serves them all: the way a port server answering many
// clients at once keeps up. It returns a lease or an error for each.
func (r *Registry) LeaseEach(ctx context.Context, opts []LeaseOptions) ([]Assignment, []error) {
	return r.leaseEach(opts, func(qs []request) ([]job, error) {
		if err := r.mkdirAll(); err != nil {
			return nil, err
		}
		held, err := r.lock(ctx, lock.Exclusive)
		if err != nil {
			return nil, err
		}
		return r.runBatch(held, qs)
	})
}

// leaseEach validates opts, has run carry out the valid ones (one lease
// each) and maps its jobs back to opts' order.
func (r *Registry) leaseEach(opts []LeaseOptions, run func([]request) ([]job, error)) ([]Assignment, []error) {
	out := make([]Assignment, len(opts))
	errs := make([]error, len(opts))
	var qs []request
	var at []int // index in opts of each request
	for i, o := range opts {
		q, err := leaseRequest(1, o)
		if err != nil {
			errs[i] = err
			continue
		}
		qs = append(qs, q)
		at = append(at, i)
	}
	if len(qs) == 0 {
		return out, errs
	}
	if err := r.usable(); err != nil {
		for _, i := range at {
			errs[i] = fmt.Errorf("lease: %w", err)
		}
		return out, errs
	}
	jobs, err := run(qs)
	for j, i := range at {
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("lease: %w", err)
		case jobs[j].err != nil:
			errs[i] = fmt.Errorf("lease: %w", jobs[j].err)
		default:
			out[i] = r.leaseAssignments(qs[j], jobs[j].ports)[0]
		}
	}
	return out, errs
}

// ownerOf identifies process pid and reads its command line. This
// process's are read once: its pid, start time and pid namespace do not
// change while it runs, and a test binary leasing a port per test would
// read them again each time (two files of /proc, six system calls).
func ownerOf(pid int) (procinfo.Identity, string, error) {
	if pid != os.Getpid() {
		id, err := procinfo.Lookup(pid)
		if err != nil {
			return procinfo.Identity{}, "", err
		}
		return id, procinfo.Command(id.PID), nil
	}
	selfOwner.mu.Lock()
	defer selfOwner.mu.Unlock()
	if selfOwner.id.PID == 0 {
		id, err := procinfo.Lookup(pid)
		if err != nil {
			return procinfo.Identity{}, "", err
		}
		selfOwner.id, selfOwner.command = id, procinfo.Command(id.PID)
	}
	return selfOwner.id, selfOwner.command, nil
}

// selfOwner is this process as ownerOf identified it.
var selfOwner struct {
	mu      sync.Mutex
	id      procinfo.Identity
	command string
}

// leaseRequest validates a lease and identifies its owner.
func leaseRequest(n int, opts LeaseOptions) (request, error) {
	if n < 1 || n > MaxLeaseN {
		return request{}, fmt.Errorf("lease %d ports: want 1 to %d", n, MaxLeaseN)
	}
	if opts.Near != 0 {
		if err := validatePort("", opts.Near); err != nil {
			return request{}, err
		}
	}
	for _, rg := range opts.Ports {
		if rg.First < 1 || rg.Last > portrange.MaxPort || rg.First > rg.Last {
			return request{}, fmt.Errorf("lease: port range %d-%d: %w", rg.First, rg.Last, ErrInvalidPort)
		}
	}
	pid := opts.OwnerPID
	if pid == 0 {
		pid = os.Getpid()
	}
	if opts.OwnerPID == 1 { // the caller itself may be pid 1 of a container, which does exit
		return request{}, fmt.Errorf("lease for pid 1: %w", ErrInitOwner)
	}
	// The owner as /proc numbers it: in a pid namespace whose /proc is the
	// parent's, pid (our numbering) and owner.PID differ.
	owner, command, err := ownerOf(pid)
	if err != nil || (opts.OwnerStart != 0 && owner.Start != opts.OwnerStart) {
		return request{}, fmt.Errorf("lease for pid %d: %w", pid, ErrNoOwner)
	}
	q := request{Kind: store.Lease, Count: n, Suggested: opts.Near, Ports: opts.Ports, Owner: owner,
		Command: command}
	if pid == os.Getpid() {
		q.Dir, _ = os.Getwd()
	}
	return q, nil
}

// leaseAssignments describes the ports a lease request got.
func (r *Registry) leaseAssignments(q request, ports []int) []Assignment {
	now := r.opts.Now()
	out := make([]Assignment, len(ports))
	for i, p := range ports {
		out[i] = Assignment{ID: leaseID(p), Port: p, Kind: Lease, Created: now, Updated: now,
			OwnerPID: q.Owner.PID, OwnerStart: q.Owner.Start, OwnerNS: q.Owner.NS, Dir: q.Dir, Command: q.Command}
	}
	return out
}

// ReleasePort removes whatever holds port, a lease or a stable assignment,
// and returns it, or an error wrapping [ErrNotFound].
func (r *Registry) ReleasePort(ctx context.Context, port int) (Assignment, error) {
	if err := r.usable(); err != nil {
		return Assignment{}, fmt.Errorf("release port %d: %w", port, err)
	}
	if err := validatePort("", port); err != nil {
		return Assignment{}, err
	}
	if _, err := os.Lstat(r.path); errors.Is(err, os.ErrNotExist) {
		return Assignment{}, fmt.Errorf("release port %d: %w", port, ErrNotFound)
	}
	var a Assignment
	err := r.withSession(ctx, nil, plan{}, func(s *session) error {
		for _, db := range []*store.DB{s.main, s.leases} {
			if db == nil {
				continue
			}
			var id string
			if err := db.View(func(tx *store.Tx) error {
				id, _ = tx.PortOwner(port)
				return nil
			}); err != nil || id == "" {
				if err != nil {
					return err
				}
				continue
			}
			return db.Update(func(tx *store.Tx) error {
				e, _, err := tx.Delete(id)
				a = fromEntry(e)
				return err
			})
		}
		return ErrNotFound
	})
	if err != nil {
		return Assignment{}, fmt.Errorf("release port %d: %w", port, err)
	}
	return a, nil
}

// ReleaseLease ends lease a, if the port is still leased as a says: to the
// same owner process (pid and start time). It reports ErrNotFound when the
// port has since gone to someone else (its owner died and another lease
// took it), which a plain ReleasePort would take from the new holder.
func (r *Registry) ReleaseLease(ctx context.Context, a Assignment) error {
	if err := r.usable(); err != nil {
		return fmt.Errorf("release lease %s: %w", a.ID, err)
	}
	if _, err := os.Lstat(r.LeasePath()); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release lease %s: %w", a.ID, ErrNotFound)
	}
	err := r.withSession(ctx, nil, plan{main: mainSkip, leases: true}, func(s *session) error {
		return s.leases.Update(func(tx *store.Tx) error {
			e, ok, err := tx.Get(leaseID(a.Port))
			if err != nil {
				return err
			}
			if !ok || leaseOwner(e) != (procinfo.Identity{PID: a.OwnerPID, Start: a.OwnerStart, NS: a.OwnerNS}) {
				return ErrNotFound
			}
			_, _, err = tx.Delete(e.ID)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", a.ID, err)
	}
	return nil
}

// Reclaim removes every lease whose owner process is gone and returns what
// it removed.
func (r *Registry) Reclaim(ctx context.Context) ([]Assignment, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("reclaim: %w", err)
	}
	if _, err := os.Lstat(r.LeasePath()); errors.Is(err, os.ErrNotExist) {
		// No leases. Still say so if the registry path holds something else.
		if err := r.view(ctx, func(*store.Tx) error { return nil }); err != nil && !errors.Is(err, errNoFile) {
			return nil, fmt.Errorf("reclaim: %w", err)
		}
		return nil, nil
	}
	var gone []Assignment
	err := r.withSession(ctx, nil, plan{leases: true}, func(s *session) error {
		return s.leases.Update(func(tx *store.Tx) error {
			gone = gone[:0]
			c := r.newChooser(&txs{leases: tx}, nil)
			var dead []store.Entry
			err := tx.ForEach(func(e store.Entry) error {
				if e.Kind == store.Lease && !c.ownerAlive(e) {
					dead = append(dead, e)
				}
				return nil
			})
			for _, e := range dead {
				if err != nil {
					break
				}
				_, _, err = tx.Delete(e.ID)
				gone = append(gone, fromEntry(e))
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reclaim: %w", err)
	}
	return gone, nil
}

// OwnerAlive reports whether a lease's owner process still runs (its pid
// exists with the recorded start time). A stable assignment has no owner
// and always reports true.
func (a Assignment) OwnerAlive() bool {
	if a.Kind != Lease {
		return true
	}
	return alive(procinfo.Identity{PID: a.OwnerPID, Start: a.OwnerStart, NS: a.OwnerNS})
}

// leaseOwner is the process a lease entry belongs to.
func leaseOwner(e store.Entry) procinfo.Identity {
	return procinfo.Identity{PID: e.OwnerPID, Start: e.OwnerStart, NS: e.OwnerNS}
}

// alive is the one rule for a lease's owner: it is alive unless the OS
// says that no process with its pid and start time runs. An owner that
// cannot be looked up counts as alive, and its lease is kept.
func alive(id procinfo.Identity) bool {
	a, err := procinfo.Alive(id)
	return a || err != nil
}
