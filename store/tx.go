package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Tx is a transaction on the registry. It is valid only inside the function
// passed to [DB.View] or [DB.Update].
type Tx struct {
	tx    *bolt.Tx
	ids   *bolt.Bucket
	ports *bolt.Bucket
}

func newTx(tx *bolt.Tx) *Tx {
	return &Tx{tx: tx, ids: tx.Bucket(bucketIDs), ports: tx.Bucket(bucketPorts)}
}

func portKey(port int) []byte {
	var k [2]byte
	binary.BigEndian.PutUint16(k[:], uint16(port))
	return k[:]
}

// Writable reports whether t may change the registry.
func (t *Tx) Writable() bool { return t.tx.Writable() }

// Commit writes a read-write transaction's changes (and, unless the DB was
// opened with NoSync, syncs them to disk). For a read-only one it is Rollback.
func (t *Tx) Commit() error {
	if !t.tx.Writable() {
		return t.tx.Rollback()
	}
	return t.tx.Commit()
}

// Rollback discards the transaction. It is safe to call after Commit.
func (t *Tx) Rollback() error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, berrors.ErrTxClosed) {
		return err
	}
	return nil
}

// Get returns the entry for id; ok is false when there is none.
func (t *Tx) Get(id string) (e Entry, ok bool, err error) {
	v := t.ids.Get([]byte(id))
	if v == nil {
		return Entry{}, false, nil
	}
	if err := e.UnmarshalBinary(v); err != nil {
		return Entry{}, false, fmt.Errorf("entry %q: %w", id, err)
	}
	e.ID = id
	return e, true, nil
}

// PortOwner returns the id holding port; ok is false when none does.
func (t *Tx) PortOwner(port int) (id string, ok bool) {
	if port < 1 || port > 65535 {
		return "", false
	}
	v := t.ports.Get(portKey(port))
	return string(v), v != nil
}

// Put stores e under e.ID, moving the id off its old port if it had one.
// It returns an error wrapping [ErrPortConflict] when e.Port is held by
// another id; the caller decides whether to delete that one first.
func (t *Tx) Put(e Entry) error {
	if e.ID == "" {
		return errors.New("put entry: empty id")
	}
	if owner, ok := t.PortOwner(e.Port); ok && owner != e.ID {
		return fmt.Errorf("put %q: port %d: %w (%q)", e.ID, e.Port, ErrPortConflict, owner)
	}
	val, err := e.MarshalBinary()
	if err != nil {
		return err
	}
	if old, ok, _ := t.Get(e.ID); ok && old.Port != e.Port {
		if err := t.ports.Delete(portKey(old.Port)); err != nil {
			return fmt.Errorf("put %q: %w", e.ID, err)
		}
	}
	if err := t.ids.Put([]byte(e.ID), val); err != nil {
		return fmt.Errorf("put %q: %w", e.ID, err)
	}
	if err := t.ports.Put(portKey(e.Port), []byte(e.ID)); err != nil {
		return fmt.Errorf("put %q: %w", e.ID, err)
	}
	return nil
}

// Delete removes id and its port; ok is false when id was not there.
// A stored entry that cannot be decoded is still removed, with its port
// found through the port index.
func (t *Tx) Delete(id string) (e Entry, ok bool, err error) {
	key := []byte(id)
	v := t.ids.Get(key)
	if v == nil {
		return Entry{}, false, nil
	}
	e.ID = id
	if derr := e.UnmarshalBinary(v); derr != nil {
		e = Entry{ID: id}
	}
	if err := t.ids.Delete(key); err != nil {
		return Entry{}, false, fmt.Errorf("delete %q: %w", id, err)
	}
	if e.Port != 0 {
		if owner, held := t.PortOwner(e.Port); held && owner == id {
			if err := t.ports.Delete(portKey(e.Port)); err != nil {
				return Entry{}, false, fmt.Errorf("delete %q: %w", id, err)
			}
		}
		return e, true, nil
	}
	// Undecodable entry: sweep the port index for it.
	c := t.ports.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if bytes.Equal(v, key) {
			if err := c.Delete(); err != nil {
				return Entry{}, false, fmt.Errorf("delete %q: %w", id, err)
			}
		}
	}
	return e, true, nil
}

// ForEachPort calls fn for each port held, in port order, stopping at the
// first error. It reads the port index only.
func (t *Tx) ForEachPort(fn func(port int) error) error {
	c := t.ports.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 2 {
			continue
		}
		if err := fn(int(binary.BigEndian.Uint16(k))); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of entries.
func (t *Tx) Len() int { return t.ids.Stats().KeyN }

// ForEach calls fn for each entry in id order, stopping at the first error.
func (t *Tx) ForEach(fn func(Entry) error) error {
	c := t.ids.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e Entry
		if err := e.UnmarshalBinary(v); err != nil {
			return fmt.Errorf("entry %q: %w", k, err)
		}
		e.ID = string(k)
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// ProblemKind says what sort of damage a [Problem] is, which decides how it
// can be repaired.
type ProblemKind int

const (
	// PageDamage is damage to bbolt's own page structure (a page freed
	// twice, unreachable, out of bounds or of the wrong type), found by
	// bbolt's consistency check. It cannot be repaired in place: the file
	// must be restored from a copy or replaced.
	PageDamage ProblemKind = iota + 1
	// IndexDrift is disagreement between the id and port indexes, or an
	// entry that cannot be decoded, in pages bbolt itself finds sound.
	// [Tx.RebuildPortIndex] repairs the indexes (and reports, leaving them
	// alone, the entries it cannot decode).
	IndexDrift
)

// String returns "page damage" or "index drift".
func (k ProblemKind) String() string {
	if names := [...]string{PageDamage: "page damage", IndexDrift: "index drift"}; k > 0 && int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("ProblemKind(%d)", int(k))
}

// Problem is one thing [Tx.Check] found wrong with the registry file.
type Problem struct {
	Kind ProblemKind
	// Text says what is wrong, in one line and without the kind, e.g.
	// `id "web" has port 8000, port index says ""`.
	Text string
}

// String returns the kind and the text, e.g. "index drift: id …".
func (p Problem) String() string { return p.Kind.String() + ": " + p.Text }

// CheckError is the error [Tx.Check] returns when it finds problems. It
// unwraps to [ErrDamaged] when any problem is [PageDamage] and to
// [ErrInconsistent] when any is [IndexDrift], so errors.Is tells the two
// apart; errors.As gives the problems themselves.
type CheckError struct {
	Problems []Problem // in the order found: page damage first, then drift
}

// Error lists the problems, one a line.
func (e *CheckError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns ErrDamaged and/or ErrInconsistent, by the kinds of problems found.
func (e *CheckError) Unwrap() []error {
	var errs []error
	if e.has(PageDamage) {
		errs = append(errs, ErrDamaged)
	}
	if e.has(IndexDrift) {
		errs = append(errs, ErrInconsistent)
	}
	return errs
}

func (e *CheckError) has(k ProblemKind) bool {
	return slices.ContainsFunc(e.Problems, func(p Problem) bool { return p.Kind == k })
}

// Check verifies bbolt's own page structure and that the id and port
// indexes agree: every id's port maps back to it and every port's id exists
// with that port. It returns nil when all is well, and otherwise a
// [*CheckError] listing every problem found.
func (t *Tx) Check() error {
	var found []Problem
	add := func(k ProblemKind, format string, args ...any) {
		found = append(found, Problem{Kind: k, Text: fmt.Sprintf(format, args...)})
	}
	for err := range t.tx.Check() {
		add(PageDamage, "%v", err)
	}
	c := t.ids.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e Entry
		if err := e.UnmarshalBinary(v); err != nil {
			add(IndexDrift, "id %q: %v", k, err)
			continue
		}
		if owner, ok := t.PortOwner(e.Port); !ok || owner != string(k) {
			add(IndexDrift, "id %q has port %d, port index says %q", k, e.Port, owner)
		}
	}
	c = t.ports.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 2 {
			add(IndexDrift, "port key %x", k)
			continue
		}
		port := int(binary.BigEndian.Uint16(k))
		e, ok, err := t.Get(string(v))
		if err == nil && (!ok || e.Port != port) {
			add(IndexDrift, "port %d points to id %q, which does not hold it", port, v)
		}
	}
	if found == nil {
		return nil
	}
	return &CheckError{Problems: found}
}

// RebuildPortIndex makes the port index agree with the id index: every
// entry's port points back to it, and port keys that no entry claims are
// removed. Where two entries claim one port, the index keeps the one it
// had (or the first, in id order) and the clash is reported, since which
// assignment is right cannot be known here. It returns what it changed and
// the clashes; the transaction must be writable.
func (t *Tx) RebuildPortIndex() (changed, clashes []string, err error) {
	claims := map[int][]string{}
	unreadable := map[string]bool{}
	c := t.ids.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e Entry
		if err := e.UnmarshalBinary(v); err != nil {
			clashes = append(clashes, fmt.Sprintf("id %q cannot be read (%v): left alone", k, err))
			unreadable[string(k)] = true
			continue
		}
		claims[e.Port] = append(claims[e.Port], string(k))
	}
	// Drop port keys no entry claims, or that point at an id not claiming them.
	pc := t.ports.Cursor()
	for k, v := pc.First(); k != nil; k, v = pc.Next() {
		if len(k) != 2 {
			if err := pc.Delete(); err != nil {
				return nil, nil, err
			}
			changed = append(changed, fmt.Sprintf("removed malformed port key %x", k))
			continue
		}
		port := int(binary.BigEndian.Uint16(k))
		ids := claims[port]
		if !slices.Contains(ids, string(v)) && !unreadable[string(v)] { // an unreadable entry keeps its port
			if err := pc.Delete(); err != nil {
				return nil, nil, err
			}
			changed = append(changed, fmt.Sprintf("removed port %d → %q: no such assignment", port, v))
		}
	}
	for port, ids := range claims {
		owner, ok := t.PortOwner(port)
		if !ok {
			owner = ids[0]
			if err := t.ports.Put(portKey(port), []byte(owner)); err != nil {
				return nil, nil, err
			}
			changed = append(changed, fmt.Sprintf("indexed port %d → %q", port, owner))
		}
		if len(ids) > 1 || !slices.Contains(ids, owner) {
			clashes = append(clashes, fmt.Sprintf("port %d is claimed by %q; the index keeps %q", port, ids, owner))
		}
	}
	slices.Sort(changed)
	slices.Sort(clashes)
	return changed, clashes, nil
}
