package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/portfor/portfor/store"
)

// Scopes group names: "web" in scope "feature-x" and "web" in the main
// checkout are two names with two ports. A scoped name is kept under the
// key "SCOPE:NAME": no name or scope holds ':', so keys never collide with
// unscoped names, and "lease:PORT" keys are told apart because no scope is
// called "lease".

// MaxScopeLen is the longest scope accepted, in bytes.
const MaxScopeLen = 100

// ErrInvalidScope is returned (wrapped) for a scope [ValidateScope] refuses.
var ErrInvalidScope = errors.New("invalid scope")

// ValidateScope reports whether s can name a scope: the rules of
// [ValidateID], at most [MaxScopeLen] bytes, and not "lease".
func ValidateScope(s string) error {
	reason := ""
	switch err := ValidateID(s); {
	case err != nil:
		var ie *IDError
		if errors.As(err, &ie) {
			reason = ie.Reason
		} else {
			reason = err.Error()
		}
	case len(s) > MaxScopeLen:
		reason = fmt.Sprintf("longer than %d bytes", MaxScopeLen)
	case s == "lease":
		reason = `"lease" names the registry's leases`
	default:
		return nil
	}
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidScope, s, reason)
}

// Scope returns the scope of this handle's names ("" for the global ones).
func (r *Registry) Scope() string { return r.opts.Scope }

// dir is the directory recorded for a name this handle creates: its
// ScopeDir, or the working directory.
func (r *Registry) dir() string {
	if r.opts.ScopeDir != "" {
		return r.opts.ScopeDir
	}
	dir, _ := os.Getwd()
	return dir
}

// key is the store key of id in this handle's scope.
func (r *Registry) key(id string) string { return scopedKey(r.opts.Scope, id) }

// keys maps key over ids, in a new slice.
func (r *Registry) keys(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = r.key(id)
	}
	return out
}

func scopedKey(scope, id string) string {
	if scope == "" {
		return id
	}
	return scope + ":" + id
}

// splitKey returns the scope and the name a store key holds.
func splitKey(key string) (scope, id string) {
	if IsLeaseID(key) {
		return "", key
	}
	if scope, id, ok := strings.Cut(key, ":"); ok {
		return scope, id
	}
	return "", key
}

// validateKey checks a key read from elsewhere (the request queue): a
// valid name, in a valid scope if any.
func validateKey(key string) error {
	scope, id := splitKey(key)
	if scope != "" {
		if err := ValidateScope(scope); err != nil {
			return err
		}
	}
	return ValidateID(id)
}

// ReleaseScope removes every name of scope in one transaction and returns
// what they were (none is no error: the scope is empty). scope must be
// valid and not empty.
func (r *Registry) ReleaseScope(ctx context.Context, scope string) ([]Assignment, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("release scope %q: %w", scope, err)
	}
	if err := ValidateScope(scope); err != nil {
		return nil, err
	}
	return r.releaseScopes(ctx, func(s string, _ []store.Entry) bool { return s == scope })
}

// Prune removes the names of every scope whose directory is gone, in one
// transaction, and returns them: a scope made for a git worktree, once
// `git worktree remove` has deleted it. A scope's directory is what its
// names recorded as Dir: Options.ScopeDir (for a worktree, its
// administrative directory, which moving the worktree keeps), or else the
// working directories they were asked from. It is gone when none of those
// directories exists any more. A scope with no directory recorded is kept.
func (r *Registry) Prune(ctx context.Context) ([]Assignment, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return r.releaseScopes(ctx, func(_ string, es []store.Entry) bool { return dirsGone(es) })
}

// GoneScopes returns the scopes [Registry.Prune] would remove, sorted,
// without changing anything.
func (r *Registry) GoneScopes(ctx context.Context) ([]string, error) {
	by := map[string][]store.Entry{}
	err := r.view(ctx, func(tx *store.Tx) error { return collectScopes(tx, by) })
	if errors.Is(err, errNoFile) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for s, es := range by {
		if dirsGone(es) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// collectScopes adds every scoped entry of tx to by, under its scope.
func collectScopes(tx *store.Tx, by map[string][]store.Entry) error {
	return tx.ForEach(func(e store.Entry) error {
		if scope, _ := splitKey(e.ID); scope != "" {
			by[scope] = append(by[scope], e)
		}
		return nil
	})
}

// releaseScopes deletes, in one transaction, the entries of every scope
// that drop reports true for.
func (r *Registry) releaseScopes(ctx context.Context, drop func(scope string, es []store.Entry) bool) ([]Assignment, error) {
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []Assignment
	err := r.update(ctx, func(tx *store.Tx) error {
		out = out[:0]
		by := map[string][]store.Entry{}
		if err := collectScopes(tx, by); err != nil {
			return err
		}
		for s, es := range by {
			if !drop(s, es) {
				continue
			}
			for _, e := range es {
				gone, ok, err := tx.Delete(e.ID)
				if err != nil {
					return err
				}
				if ok {
					out = append(out, fromEntry(gone))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release scopes: %w", err)
	}
	slices.SortFunc(out, func(a, b Assignment) int {
		return cmp.Or(strings.Compare(a.Scope, b.Scope), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// dirsGone reports whether every directory recorded for es is gone (and at
// least one was recorded).
func dirsGone(es []store.Entry) bool {
	seen := false
	for _, e := range es {
		if e.Dir == "" {
			continue
		}
		seen = true
		if _, err := os.Stat(e.Dir); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return seen
}
