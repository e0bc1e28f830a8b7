package store_test

// Files bbolt writes or reads that portfor never makes, and files a
// hostile writer of a shared registry could make: Peek must answer as
// bbolt does, at about bbolt's cost.

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/portfor/portfor/store"
)

func boltRegistry(t *testing.T, pageSize int, fill func(ids *bolt.Bucket) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		ids, _ := tx.CreateBucket([]byte("ids"))
		tx.CreateBucket([]byte("ports"))
		m, _ := tx.CreateBucket([]byte("meta"))
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], 1)
		m.Put([]byte("schema"), v[:])
		m.Put([]byte("app"), []byte("portfor"))
		return fill(ids)
	})
	if err2 := db.Close(); err == nil {
		err = err2
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func boltGet(t *testing.T, path, id string) (store.Entry, bool, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var e store.Entry
	var ok bool
	err = db.View(func(tx *store.Tx) (err error) { e, ok, err = tx.Get(id); return err })
	return e, ok, err
}

// TestPeekReadsPageSizesBboltWrites: bbolt writes and reads registries
// with these page sizes (portfor's are 4 KiB); Peek answers as bbolt does,
// reading the largest through it.
func TestPeekReadsPageSizesBboltWrites(t *testing.T) {
	for _, ps := range []int{512, 2 << 20} {
		t.Run(fmt.Sprint(ps), func(t *testing.T) {
			e := store.Entry{Port: 4242, Kind: store.Stable, Created: time.Unix(1, 0), Updated: time.Unix(1, 0)}
			v, _ := e.MarshalBinary()
			path := boltRegistry(t, ps, func(ids *bolt.Bucket) error { return ids.Put([]byte("web"), v) })
			_, wantOK, wantErr := boltGet(t, path, "web")
			got, ok, _, err := store.Peek(path, "web")
			if wantErr != nil || !wantOK {
				t.Fatalf("bbolt: ok=%v err=%v", wantOK, wantErr)
			}
			if err != nil || !ok || got.Port != 4242 {
				t.Errorf("Peek = %d, %v, %v; bbolt's Get finds port 4242", got.Port, ok, err)
			}
		})
	}
}

// TestPeekOfANestedBucketIsNotFound: for a bucket nested in ids, bbolt's
// Get gives no value (not found), and so does Peek, rather than decode the
// bucket's header as an entry.
func TestPeekOfANestedBucketIsNotFound(t *testing.T) {
	path := boltRegistry(t, 4096, func(ids *bolt.Bucket) error {
		_, err := ids.CreateBucket([]byte("web"))
		return err
	})
	_, wantOK, wantErr := boltGet(t, path, "web")
	_, ok, _, err := store.Peek(path, "web")
	if ok != wantOK || (err == nil) != (wantErr == nil) {
		t.Errorf("Peek: ok=%v err=%v; bbolt's Get: ok=%v err=%v", ok, err, wantOK, wantErr)
	}
}

// TestPeekEachHandsBboltTheRestOfTheWalk: an entry of 2 MiB (a valid
// entry and padding, which decoding ignores) lies beyond what Peek reads
// itself; PeekEach gives the entries before it, and bbolt the rest, each
// once and in order, as ForEach does.
func TestPeekEachHandsBboltTheRestOfTheWalk(t *testing.T) {
	enc := func(port int) []byte {
		e := store.Entry{Port: port, Kind: store.Stable, Created: time.Unix(1, 0), Updated: time.Unix(1, 0)}
		v, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	path := boltRegistry(t, 4096, func(ids *bolt.Bucket) error {
		for i := range 300 {
			v := enc(1024 + i)
			if i == 150 {
				v = append(v, make([]byte, 2<<20)...)
			}
			if err := ids.Put(fmt.Appendf(nil, "svc-%03d", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	var want, got []string
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *store.Tx) error {
		return tx.ForEach(func(e store.Entry) error { want = append(want, fmt.Sprint(e.ID, e.Port)); return nil })
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PeekEach(path, func(e store.Entry) error { got = append(got, fmt.Sprint(e.ID, e.Port)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 300 {
		t.Errorf("PeekEach gave %d entries, ForEach %d; they differ: %v", len(got), len(want), fmt.Sprint(got) != fmt.Sprint(want))
	}
	if e, ok, _, err := store.Peek(path, "svc-150"); err != nil || !ok || e.Port != 1174 {
		t.Errorf("Peek(svc-150) = %d, %v, %v", e.Port, ok, err)
	}
}

// TestPeekBoundsWhatAPageMayCost: a file another member of a shared
// registry can write, a chain of branch pages each claiming `overflow`
// overflow pages (a sparse file, a few KiB on disk). bbolt answers with a
// few pages read; Peek and PeekEach hand the file to bbolt rather than
// read 128 MiB a level, and answer as it does.
func TestPeekBoundsWhatAPageMayCost(t *testing.T) {
	const depth, overflow = 4, 1<<15 - 1 // 128 MiB a level
	path := filepath.Join(t.TempDir(), "registry.db")
	craftDeep(t, path, depth, overflow)
	if e, ok, err := boltGet(t, path, "a"); err != nil || !ok || e.Port != 4242 {
		t.Fatalf("bbolt: %v %v %v", e.Port, ok, err)
	}
	for _, each := range []bool{false, true} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var err error
		port := 0
		if each {
			_, err = store.PeekEach(path, func(e store.Entry) error { port = e.Port; return nil })
		} else {
			var e store.Entry
			e, _, _, err = store.Peek(path, "a")
			port = e.Port
		}
		if err != nil || port != 4242 {
			t.Errorf("each=%v: port %d, %v; bbolt's Get finds port 4242", each, port, err)
		}
		runtime.ReadMemStats(&after)
		alloc := (after.TotalAlloc - before.TotalAlloc) >> 20
		t.Logf("each=%v: err=%v, allocated %d MiB", each, err, alloc)
		if alloc > 16 {
			t.Errorf("each=%v: Peek allocated %d MiB for a file bbolt reads a few pages of", each, alloc)
		}
	}
}

const rps = 4096

func rhdr(p []byte, id uint64, flags, count uint16, overflow uint32) {
	le := binary.LittleEndian
	le.PutUint64(p, id)
	le.PutUint16(p[8:], flags)
	le.PutUint16(p[10:], count)
	le.PutUint32(p[12:], overflow)
}

func rleaf(id uint64, keys, vals [][]byte, bucket bool) []byte {
	le := binary.LittleEndian
	n := len(keys)
	p := make([]byte, 16+16*n)
	rhdr(p, id, 0x02, uint16(n), 0)
	for i := range keys {
		el := 16 + 16*i
		if bucket {
			le.PutUint32(p[el:], 1)
		}
		le.PutUint32(p[el+4:], uint32(len(p)-el))
		le.PutUint32(p[el+8:], uint32(len(keys[i])))
		le.PutUint32(p[el+12:], uint32(len(vals[i])))
		p = append(p, keys[i]...)
		p = append(p, vals[i]...)
	}
	return p
}

func rmeta(id, high, txid uint64) []byte {
	le := binary.LittleEndian
	p := make([]byte, rps)
	rhdr(p, id, 0x04, 0, 0)
	m := p[16:]
	le.PutUint32(m[0:], 0xED0CDAED)
	le.PutUint32(m[4:], 2)
	le.PutUint32(m[8:], rps)
	le.PutUint64(m[16:], 2)
	le.PutUint64(m[32:], 3)
	le.PutUint64(m[40:], high)
	le.PutUint64(m[48:], txid)
	h := fnv.New64a()
	h.Write(m[:56])
	le.PutUint64(m[56:], h.Sum64())
	return p
}

func craftDeep(t *testing.T, path string, depth int, overflow uint64) {
	le := binary.LittleEndian
	high := uint64(4+depth+1) + overflow
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(high * rps)); err != nil {
		t.Fatal(err)
	}
	w := func(id uint64, b []byte) {
		if _, err := f.WriteAt(b, int64(id*rps)); err != nil {
			t.Fatal(err)
		}
	}
	w(0, rmeta(0, high, 1))
	w(1, rmeta(1, high, 2))
	bh := func(root uint64, inline []byte) []byte {
		b := make([]byte, 16)
		le.PutUint64(b, root)
		return append(b, inline...)
	}
	var schema [4]byte
	binary.BigEndian.PutUint32(schema[:], 1)
	metaInline := rleaf(0, [][]byte{[]byte("app"), []byte("schema")}, [][]byte{[]byte("portfor"), schema[:]}, false)
	w(2, rleaf(2, [][]byte{[]byte("ids"), []byte("meta"), []byte("ports")},
		[][]byte{bh(4, nil), bh(0, metaInline), bh(0, rleaf(0, nil, nil, false))}, true))
	fl := make([]byte, 16)
	rhdr(fl, 3, 0x10, 0, 0)
	w(3, fl)
	for i := range depth {
		id := uint64(4 + i)
		p := make([]byte, 33)
		rhdr(p, id, 0x01, 1, uint32(overflow))
		le.PutUint32(p[16:], 16)
		le.PutUint32(p[20:], 1)
		le.PutUint64(p[24:], id+1)
		p[32] = 'a'
		w(id, p)
	}
	e := store.Entry{Port: 4242, Kind: store.Stable, Created: time.Unix(1, 0), Updated: time.Unix(1, 0), Dir: "/", Command: "x"}
	v, _ := e.MarshalBinary()
	w(uint64(4+depth), rleaf(uint64(4+depth), [][]byte{[]byte("a")}, [][]byte{v}, false))
}
