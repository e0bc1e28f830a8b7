package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

// Many names at once: the calls below do for a list of ids what
// ForwardPort, Lookup and Release do for one, in one transaction, and say
// per id what became of it, as [Registry.LeaseEach] does for leases.

// ForwardRequest asks [Registry.ForwardEach] for one id's port.
type ForwardRequest struct {
	ID        string
	Suggested int // as for ForwardPort; 0 for none
}

// ForwardResult is what [Registry.ForwardEach] did for one request.
type ForwardResult struct {
	Port int // the id's port
	// Known is true when the id held Port before the call, in which case
	// the request's Suggested port played no part.
	Known bool
}

// ForwardEach is [Registry.ForwardPort] for many ids: it returns, in the
// order asked, each id's port, assigning ports to the new ids in one
// transaction. errs[i] is request i's own error (an invalid id or port, no
// port left), and every request carries the error when the transaction as
// a whole fails; a request that fails does not stop the others. An id
// asked for twice gets one port, the first request's suggestion deciding.
func (r *Registry) ForwardEach(ctx context.Context, reqs []ForwardRequest) ([]ForwardResult, []error) {
	out := make([]ForwardResult, len(reqs))
	errs := make([]error, len(reqs))
	failAll := func(err error) ([]ForwardResult, []error) {
		for i := range reqs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("forward %q: %w", reqs[i].ID, err)
			}
		}
		return out, errs
	}
	if err := r.usable(); err != nil {
		return failAll(err)
	}
	reqs = slices.Clone(reqs)
	for i, q := range reqs {
		if err := ValidateID(q.ID); err != nil {
			errs[i] = err
		} else if q.Suggested != 0 {
			errs[i] = validatePort(q.ID, q.Suggested)
		}
		reqs[i].ID = r.key(q.ID)
	}
	// The known ids under the shared lock, without queueing behind a
	// writer (see ForwardPort).
	known := map[string]int{}
	_, err := r.viewMaybe(ctx, true, func(tx *store.Tx) error {
		for i, q := range reqs {
			if errs[i] != nil {
				continue
			}
			e, ok, err := tx.Get(q.ID)
			if err != nil {
				return err
			}
			if ok {
				known[q.ID] = e.Port
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoFile) {
		return failAll(err)
	}
	var qs []request
	first := map[string]int{} // id → index in qs
	for i, q := range reqs {
		if errs[i] != nil {
			continue
		}
		if p, ok := known[q.ID]; ok {
			out[i] = ForwardResult{Port: p, Known: true}
			continue
		}
		if _, ok := first[q.ID]; !ok {
			first[q.ID] = len(qs)
			qs = append(qs, request{Kind: store.Stable, ID: q.ID, Suggested: q.Suggested})
		}
	}
	if len(qs) == 0 {
		return out, errs
	}
	jobs, err := r.submitAll(ctx, qs)
	if err != nil {
		return failAll(err)
	}
	for i, q := range reqs {
		if errs[i] != nil || out[i].Known {
			continue
		}
		j := jobs[first[q.ID]]
		if j.err != nil {
			errs[i] = fmt.Errorf("forward %q: %w", q.ID, j.err)
			continue
		}
		out[i].Port = j.ports[0]
	}
	return out, errs
}

// submitAll carries out qs (stable requests) in one batch. One request
// goes through submit and the queue; several take the exclusive lock,
// waiting for it in the kernel, and carry the queued requests out with
// theirs.
func (r *Registry) submitAll(ctx context.Context, qs []request) ([]job, error) {
	if len(qs) == 1 {
		ports, err := r.submit(ctx, qs[0])
		return []job{{q: qs[0], ports: ports, err: err}}, nil
	}
	if err := r.mkdirAll(); err != nil {
		return nil, err
	}
	dir := r.dir()
	for i := range qs {
		qs[i].Dir = dir
	}
	held, ok, err := r.tryLock(lock.Exclusive)
	if err == nil && !ok {
		held, err = r.lock(ctx, lock.Exclusive)
	}
	if err != nil {
		return nil, err
	}
	return r.runBatch(held, qs)
}

// LookupEach is [Registry.Lookup] for many ids, read in one transaction:
// errs[i] wraps [ErrNotFound] for an id that has no assignment.
func (r *Registry) LookupEach(ctx context.Context, ids []string) ([]Assignment, []error) {
	out := make([]Assignment, len(ids))
	errs := make([]error, len(ids))
	if err := r.usable(); err != nil {
		for i, id := range ids {
			errs[i] = fmt.Errorf("lookup %q: %w", id, err)
		}
		return out, errs
	}
	for i, id := range ids {
		errs[i] = ValidateID(id)
	}
	ids = r.keys(ids)
	err := r.view(ctx, func(tx *store.Tx) error {
		for i, id := range ids {
			if errs[i] != nil {
				continue
			}
			a, err := found(tx.Get(id))
			if err != nil {
				if !errors.Is(err, ErrNotFound) {
					return err
				}
				errs[i] = fmt.Errorf("lookup %q: %w", id, err)
			}
			out[i] = a
		}
		return nil
	})
	if errors.Is(err, errNoFile) {
		err = ErrNotFound
	}
	if err != nil {
		for i, id := range ids {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("lookup %q: %w", id, err)
			}
		}
	}
	return out, errs
}

// ReleaseEach is [Registry.Release] for many ids, in one transaction. It
// releases every id that has an assignment, even when others do not:
// errs[i] wraps [ErrNotFound] for an id that had none, and every id
// carries the error when the transaction fails as a whole.
func (r *Registry) ReleaseEach(ctx context.Context, ids []string) ([]Assignment, []error) {
	out := make([]Assignment, len(ids))
	errs := make([]error, len(ids))
	failAll := func(err error) ([]Assignment, []error) {
		for i, id := range ids {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("release %q: %w", id, err)
			}
		}
		return make([]Assignment, len(ids)), errs
	}
	if err := r.usable(); err != nil {
		return failAll(err)
	}
	valid := 0
	for i, id := range ids {
		if errs[i] = ValidateID(id); errs[i] == nil {
			valid++
		}
	}
	ids = r.keys(ids)
	if valid == 0 {
		return out, errs
	}
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		return failAll(ErrNotFound)
	}
	err := r.update(ctx, func(tx *store.Tx) error {
		for i, id := range ids {
			if errs[i] != nil {
				continue
			}
			a, err := found(tx.Delete(id))
			if errors.Is(err, ErrNotFound) {
				errs[i] = fmt.Errorf("release %q: %w", id, err)
				// An id named twice is released once and found once.
				for j := range i {
					if ids[j] == id && errs[j] == nil {
						errs[i], a = nil, out[j]
					}
				}
			} else if err != nil {
				return err
			}
			out[i] = a
		}
		return nil
	})
	if err != nil {
		return failAll(err)
	}
	return out, errs
}

// Move gives id, which must have an assignment, port instead of the one it
// holds, in one transaction, and returns the port it held. The checks are
// those of [Registry.Bind]: port must be valid and held by no other id or
// lease ([ErrPortTaken]); like Bind, Move does not probe the host. Moving
// an id to the port it holds changes nothing. Leases are not moved.
func (r *Registry) Move(ctx context.Context, id string, port int) (int, error) {
	if err := r.usable(); err != nil {
		return 0, fmt.Errorf("move %q: %w", id, err)
	}
	if err := ValidateID(id); err != nil {
		return 0, err
	}
	if err := validatePort(id, port); err != nil {
		return 0, err
	}
	id = r.key(id)
	if IsLeaseID(id) {
		return 0, fmt.Errorf("move %q: a lease keeps its port; release it and lease again", id)
	}
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("move %q: %w", id, ErrNotFound)
	}
	var old int
	err := r.withSession(ctx, nil, plan{}, func(s *session) error {
		t, err := s.begin(true, false)
		if err != nil {
			return err
		}
		defer t.rollback()
		e, ok, err := t.main.Get(id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		old = e.Port
		if e.Port == port {
			return nil
		}
		if err := t.portFree(id, port); err != nil {
			return err
		}
		e.Port, e.Updated = port, r.opts.Now()
		if err := t.put(t.main, e); err != nil {
			return err
		}
		return t.commit()
	})
	if err != nil {
		return 0, fmt.Errorf("move %q: %w", id, err)
	}
	return old, nil
}
