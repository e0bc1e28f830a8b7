package store_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/store"
)

// TestPeekAgreesWithGet checks Peek against a transaction's Get on
// registries of every shape bbolt gives them: empty, one leaf, trees of
// branch pages (5,000 names), entries spilling onto overflow pages, and
// after deletes have freed pages.
func TestPeekAgreesWithGet(t *testing.T) {
	for _, n := range []int{0, 1, 100, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path := regPath(t)
			db := mustOpen(t, path)
			ids := []string{"missing", "", "svc-", "zzzz"}
			require.NoError(t, db.Update(func(tx *store.Tx) error {
				for i := range n {
					e := stable(fmt.Sprintf("svc-%05d", i), 1024+i)
					if i%97 == 3 {
						e.Command = strings.Repeat("c", 9000) // beyond a page: overflow pages
					}
					if err := tx.Put(e); err != nil {
						return err
					}
					ids = append(ids, e.ID)
				}
				return nil
			}))
			if n > 10 {
				require.NoError(t, db.Update(func(tx *store.Tx) error {
					for i := 0; i < n; i += 7 {
						if _, _, err := tx.Delete(fmt.Sprintf("svc-%05d", i)); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			require.NoError(t, db.Close())
			// Read-only, as a reader holds it: bbolt's lock shared.
			db, err := store.Open(path, store.Options{ReadOnly: true})
			require.NoError(t, err)
			defer db.Close()
			gen, err := store.ReadGeneration(path)
			require.NoError(t, err)
			for _, id := range ids {
				var want store.Entry
				var wantOK bool
				require.NoError(t, db.View(func(tx *store.Tx) (err error) {
					want, wantOK, err = tx.Get(id)
					return err
				}))
				got, ok, g, err := store.Peek(path, id)
				require.NoError(t, err, id)
				assert.Equal(t, wantOK, ok, id)
				assert.Equal(t, want, got, id)
				assert.True(t, g.Same(gen), "Peek's generation is the file's")
			}
			var want, got []store.Entry
			require.NoError(t, db.View(func(tx *store.Tx) error {
				return tx.ForEach(func(e store.Entry) error { want = append(want, e); return nil })
			}))
			g, err := store.PeekEach(path, func(e store.Entry) error { got = append(got, e); return nil })
			require.NoError(t, err)
			assert.Equal(t, want, got, "PeekEach gives what ForEach gives, in order")
			assert.True(t, g.Same(gen))
			stop := errors.New("stop")
			seen := 0
			_, err = store.PeekEach(path, func(store.Entry) error { seen++; return stop })
			if n > 0 {
				assert.ErrorIs(t, err, stop)
				assert.Equal(t, 1, seen, "PeekEach stops at fn's first error")
			}
		})
	}
}

// TestPeekWaitsForBboltsLock: a program holding bbolt's own lock on the
// file (open read-write) is waited for, as Open waits, and not read
// around.
func TestPeekWaitsForBboltsLock(t *testing.T) {
	path := regPath(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error { return tx.Put(stable("web", 8000)) }))
	_, ok, _, err := store.Peek(path, "web")
	assert.False(t, ok)
	assert.ErrorContains(t, err, "lock")
	require.NoError(t, db.Close())
	e, ok, _, err := store.Peek(path, "web")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 8000, e.Port)
}

// TestPeekRefusesWhatOpenRefuses gives Peek the files Open refuses: the
// same errors, and nothing changed.
func TestPeekRefusesWhatOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, want := range refusedFiles(t, dir) {
		path := filepath.Join(dir, name)
		before, _ := os.ReadFile(path)
		_, ok, _, err := store.Peek(path, "web")
		assert.False(t, ok, name)
		require.Error(t, err, name)
		if want != nil {
			assert.ErrorIs(t, err, want, name)
		}
		after, _ := os.ReadFile(path)
		assert.Equal(t, before, after, "%s was changed", name)
	}
	_, _, _, err := store.Peek(filepath.Join(dir, "nothing.db"), "web")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// FuzzPeek feeds Peek and PeekEach registry files with bytes changed: they
// must return an entry, nothing, or an error, never panic or loop; an entry
// Peek returns must be the one asked for.
func FuzzPeek(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error {
		for i := range 300 {
			e := stable(fmt.Sprintf("svc-%03d", i), 2000+i)
			if i == 5 {
				e.Command = strings.Repeat("x", 5000)
			}
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	db.Close()
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{}, "svc-005")
	f.Add(uint32(4096*2+20), []byte{0xff, 0xff}, "svc-100")
	f.Add(uint32(4096*3+10), []byte{0, 0}, "svc-299")
	f.Add(uint32(4096*4+16), []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, "svc-001")
	f.Fuzz(func(t *testing.T, off uint32, patch []byte, id string) {
		data := append([]byte(nil), seed...)
		if int(off) < len(data) {
			copy(data[off:], patch)
		}
		p := filepath.Join(t.TempDir(), "registry.db")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		e, ok, _, err := store.Peek(p, id)
		if err != nil && ok {
			t.Fatalf("Peek = %v, %v", ok, err)
		}
		if ok && e.ID != id {
			t.Fatalf("Peek(%q) gave %q", id, e.ID)
		}
		// Any answer will do (a damaged leaf can hold keys out of order);
		// the walk must end.
		n := 0
		store.PeekEach(p, func(store.Entry) error { n++; return nil })
		if n > len(data)/16 {
			t.Fatalf("PeekEach gave %d entries from %d bytes", n, len(data))
		}
	})
}
