package store_test

import (
	"testing"

	"github.com/portfor/portfor/store"
)

// oneEntry makes a registry holding one entry, and returns its path and
// the entry.
func oneEntry(b *testing.B) (string, store.Entry) {
	path := regPath(b)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	want := stable("svc", 20000)
	if err := db.Update(func(tx *store.Tx) error { return tx.Put(want) }); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path, want
}

// BenchmarkOpenViewClose measures the floor of every registry read: a
// read-only Open (header check, bbolt mmap, schema check), one Get in a View
// and Close, on a registry holding one entry.
func BenchmarkOpenViewClose(b *testing.B) {
	path, want := oneEntry(b)
	for b.Loop() {
		db, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		var port int
		err = db.View(func(tx *store.Tx) error {
			e, ok, err := tx.Get(want.ID)
			if ok {
				port = e.Port
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		if port != want.Port {
			b.Fatalf("Get returned port %d, want %d", port, want.Port)
		}
	}
}

// BenchmarkPeek is BenchmarkOpenViewClose's lookup through Peek: the
// header and three pages read with pread, no mapping.
func BenchmarkPeek(b *testing.B) {
	path, want := oneEntry(b)
	for b.Loop() {
		e, ok, _, err := store.Peek(path, want.ID)
		if err != nil || !ok || e.Port != want.Port {
			b.Fatalf("Peek = %v, %v, %v", e, ok, err)
		}
	}
}

// BenchmarkOpenUpdateClose measures the floor of every registry write: a
// read-write Open (which also rebuilds the freelist), one Put in an Update
// committed with fdatasync, and Close. Each op moves one id between two
// ports, so every commit really changes both indexes.
func BenchmarkOpenUpdateClose(b *testing.B) {
	path := regPath(b)
	db, err := store.Open(path, store.Options{}) // create the file outside the loop
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		e := stable("svc", 20000+i%2)
		i++
		db, err := store.Open(path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var got store.Entry
		err = db.Update(func(tx *store.Tx) error {
			if err := tx.Put(e); err != nil {
				return err
			}
			var err error
			got, _, err = tx.Get(e.ID)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		if got.Port != e.Port {
			b.Fatalf("Get after Put returned port %d, want %d", got.Port, e.Port)
		}
	}
	// The last commit is on disk.
	db, err = store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *store.Tx) error {
		e, ok, err := tx.Get("svc")
		if err == nil && (!ok || e.Port != 20000+(i-1)%2) {
			b.Errorf("after %d updates the file holds %+v (found %v), want port %d", i, e, ok, 20000+(i-1)%2)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
