package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

// Held is the registry held open for a run of lease batches: the exclusive
// lock taken and both files open, so that requests arriving one after
// another skip taking the lock and opening and closing the files each
// time. Everyone else waits while it is held (their requests queue and are
// carried out by its batches), so hold it briefly: a port server holds it
// for the requests that arrive within a millisecond or so of each other.
// A Held is not safe for concurrent use; Close it to let go.
type Held struct {
	r *Registry
	l *lock.Lock
	s *session
}

// Hold takes the exclusive lock, waiting as [Registry.Lease] would, and
// opens both files.
func (r *Registry) Hold(ctx context.Context) (*Held, error) {
	if err := os.MkdirAll(filepath.Dir(r.path), r.dirPerm()); err != nil {
		return nil, fmt.Errorf("open registry %s: %w", r.path, err)
	}
	l, err := r.lock(ctx, lock.Exclusive)
	if err != nil {
		return nil, err
	}
	main, err := store.Open(r.path, store.Options{Perm: r.filePerm()})
	if err != nil {
		l.Unlock()
		return nil, err
	}
	leases, err := r.openLeases(true)
	if err != nil {
		main.Close()
		l.Unlock()
		return nil, err
	}
	return &Held{r: r, l: l, s: &session{main: main, leases: leases}}, nil
}

// LeaseEach is [Registry.LeaseEach] inside the held registry: one port for
// each of opts, in one transaction, together with any queued requests.
func (h *Held) LeaseEach(opts []LeaseOptions) ([]Assignment, []error) {
	return h.r.leaseEach(opts, func(qs []request) ([][]int, []error, error) {
		batch := append(slices.Clone(qs), h.r.pending()...)
		stable := false
		for _, b := range batch {
			stable = stable || b.Kind == store.Stable
		}
		answers, errs, err := h.r.carryOutBatch(h.s, batch, len(qs), stable, true, nil)
		if err != nil {
			return nil, nil, err
		}
		return answers[:len(qs)], errs[:len(qs)], nil
	})
}

// Close closes the files and lets go of the lock.
func (h *Held) Close() error {
	err := h.s.close()
	if uerr := h.l.Unlock(); err == nil {
		err = uerr
	}
	return err
}
