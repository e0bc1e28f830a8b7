package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/portfor/portfor/store"
)

// ImportStatus says what [Registry.Import] did with one binding.
type ImportStatus int

const (
	// ImportBound means the name was new and now holds the port (or, in a
	// dry run, would).
	ImportBound ImportStatus = iota
	// ImportKept means the name already held exactly that port.
	ImportKept
	// ImportConflict means the binding was not made: see ImportResult.Err.
	ImportConflict
)

// String returns "bound", "kept" or "conflict".
func (s ImportStatus) String() string {
	switch s {
	case ImportBound:
		return "bound"
	case ImportKept:
		return "kept"
	case ImportConflict:
		return "conflict"
	}
	return fmt.Sprintf("ImportStatus(%d)", int(s))
}

// ImportResult is what [Registry.Import] did with one binding.
type ImportResult struct {
	Name   string       // the binding's name, as given
	Port   int          // the binding's port, as given
	Status ImportStatus // bound, kept or conflict
	// Err says why, for ImportConflict: an [*IDError] (a name portfor
	// does not accept), or a [*PortError] wrapping [ErrInvalidPort],
	// [ErrIDBound] (Held is the name's port) or [ErrPortTaken] (Owner
	// holds the port: a name, an earlier binding of the same import, or a
	// lease, see [IsLeaseID]).
	Err error
}

// Import binds each name to its port as [Registry.Bind] does, all in one
// transaction, and says per binding, in the order given, whether it was
// bound, was already so (kept), or conflicts: a name portfor refuses, a
// port outside 1-65535, a name that holds another port, or a port held by
// another name (in the registry or earlier in bindings) or by a lease.
// A conflict does not stop the others. With dryRun it changes nothing,
// creates no file, and reports what it would do. Like Bind, Import does
// not probe the host. The error is for the whole import (the registry
// could not be opened, locked or written); then nothing was bound.
func (r *Registry) Import(ctx context.Context, bindings []PortForBinding, dryRun bool) ([]ImportResult, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if dryRun {
		var out []ImportResult
		err := r.view(ctx, func(main *store.Tx) error {
			seen := false // no lease file: no leases, and fn is not called
			err := r.viewLeases(func(leases *store.Tx) (err error) {
				seen = true
				out, err = decideImport(&txs{main: main, leases: leases}, bindings, r.key)
				return err
			})
			if err == nil && !seen {
				out, err = decideImport(&txs{main: main}, bindings, r.key)
			}
			return err
		})
		if errors.Is(err, errNoFile) {
			out, err = decideImport(&txs{}, bindings, r.key)
		}
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		return out, nil
	}
	var out []ImportResult
	err := r.withSession(ctx, nil, plan{}, func(s *session) error {
		t, err := s.begin(true, false)
		if err != nil {
			return err
		}
		defer t.rollback()
		if out, err = decideImport(t, bindings, r.key); err != nil {
			return err
		}
		now := r.opts.Now()
		dir := r.dir()
		for _, res := range out {
			if res.Status != ImportBound {
				continue
			}
			e := store.Entry{ID: r.key(res.Name), Port: res.Port, Kind: store.Stable, Created: now, Updated: now, Dir: dir}
			if err := t.put(t.main, e); err != nil {
				return err
			}
		}
		return t.commit()
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return out, nil
}

// decideImport says what Import does with each binding, given the
// registry's transactions (either may be nil: no file) and the store key
// of a name (its scope), and changes nothing.
func decideImport(t *txs, bindings []PortForBinding, key func(string) string) ([]ImportResult, error) {
	out := make([]ImportResult, len(bindings))
	names := map[string]int{} // bound by this import: name → port
	ports := map[int]string{} // and port → name
	for i, b := range bindings {
		res := &out[i]
		*res = ImportResult{Name: b.Name, Port: b.Port, Status: ImportConflict}
		if res.Err = ValidateID(b.Name); res.Err != nil {
			continue
		}
		if res.Err = validatePort(b.Name, b.Port); res.Err != nil {
			continue
		}
		held, ok := names[b.Name]
		if !ok && t.main != nil {
			e, found, err := t.main.Get(key(b.Name))
			if err != nil {
				return nil, err
			}
			held, ok = e.Port, found
		}
		if ok {
			if held == b.Port {
				res.Status = ImportKept
			} else {
				res.Err = &PortError{ID: b.Name, Port: b.Port, Held: held, Err: ErrIDBound}
			}
			continue
		}
		if owner, taken := ports[b.Port]; taken {
			res.Err = &PortError{ID: b.Name, Port: b.Port, Owner: owner, Err: ErrPortTaken}
			continue
		}
		if res.Err = t.portFree(b.Name, b.Port); res.Err != nil {
			continue
		}
		res.Status = ImportBound
		names[b.Name], ports[b.Port] = b.Port, b.Name
	}
	return out, nil
}
