package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// Peek looks id up in the registry file at path by reading, with pread, the
// few pages on the way to it: the header, the root bucket's page, and the
// pages of the ids bucket down to id's leaf. It is what [DB.View] and
// [Tx.Get] give, without what opening a DB costs: bbolt maps the whole
// file, and unmapping it again (a TLB flush on every CPU the process ran
// on) costs 100-250 µs on a virtual machine, more than all the rest of a
// lookup.
//
// It takes bbolt's own lock on the file, shared, as a read-only Open does;
// when that is busy it does what Open and a transaction do, waiting for
// the lock as they do.
//
// It returns the file's generation too, read from the same header. Like a
// transaction, it is only meaningful under the registry's lock (shared
// at least): bbolt writes pages in place only for pages no committed
// state refers to, and the lock keeps a writer from committing meanwhile.
// The schema is checked as [Open] checks it. A file it cannot make sense
// of gives an error wrapping [ErrNotRegistry] or [ErrDamaged]; a missing
// one, an error wrapping fs.ErrNotExist.
func Peek(path, id string) (e Entry, ok bool, gen Generation, err error) {
	fail := func(err error) (Entry, bool, Generation, error) {
		return Entry{}, false, Generation{}, fmt.Errorf("registry %s: %w", path, err)
	}
	r, ids, gen, err := openPeek(path)
	if errors.Is(err, errBboltLocked) || errors.Is(err, errTooBig) {
		return peekOpened(path, id)
	}
	if err != nil {
		return fail(err)
	}
	defer r.f.Close()
	v, isBucket, err := r.bucketGetOne(ids, []byte(id))
	if errors.Is(err, errTooBig) {
		r.f.Close()
		return peekOpened(path, id)
	}
	if err != nil {
		return fail(err)
	}
	if v == nil || isBucket { // bbolt's Get gives no value for a nested bucket
		return Entry{}, false, gen, nil
	}
	if err := e.UnmarshalBinary(v); err != nil {
		return fail(fmt.Errorf("entry %q: %w", id, err))
	}
	e.ID = id
	return e, true, gen, nil
}

// PeekEach is [Tx.ForEach] as [Peek] reads: it calls fn for each entry
// in id order, stopping at the first error, reading the pages with pread.
// The same lock rules hold.
func PeekEach(path string, fn func(Entry) error) (Generation, error) {
	r, ids, gen, err := openPeek(path)
	if errors.Is(err, errBboltLocked) || errors.Is(err, errTooBig) {
		return peekEachOpened(path, fn)
	}
	if err != nil {
		return Generation{}, fmt.Errorf("registry %s: %w", path, err)
	}
	defer r.f.Close()
	budget := r.high // no page is read twice in a sound tree
	var last []byte  // the key of the last entry given to fn
	err = r.each(bucketRoot(ids), 0, &budget, func(k, v []byte) error {
		last = append(last[:0], k...)
		var e Entry
		if err := e.UnmarshalBinary(v); err != nil {
			return fmt.Errorf("entry %q: %w", k, err)
		}
		e.ID = string(k)
		return fn(e)
	})
	if errors.Is(err, errTooBig) {
		// bbolt reads the rest: the entries after the last one given.
		r.f.Close()
		if last == nil {
			return peekEachOpened(path, fn)
		}
		after := string(last)
		return peekEachOpened(path, func(e Entry) error {
			if e.ID <= after {
				return nil
			}
			return fn(e)
		})
	}
	if err != nil {
		return Generation{}, err
	}
	return gen, nil
}

// errBboltLocked says bbolt's own lock on the file is held exclusively.
var errBboltLocked = errors.New("bbolt's lock is held")

// errTooBig says a page (its page size, or its overflow pages) is larger
// than Peek reads into memory: bbolt maps the file and reads only what it
// touches, so Peek hands such a file to it. A registry's pages are 4 KiB
// and its entries a few hundred bytes; a hostile writer of a shared
// registry could otherwise make a reader allocate gigabytes (a page
// claiming a million overflow pages in a sparse file).
var errTooBig = errors.New("page larger than Peek reads")

// maxPeekPage bounds what one page, with its overflow pages, may take.
const maxPeekPage = 1 << 20

// openPeek opens the file at path, takes bbolt's lock shared, reads its
// header and checks its schema: the reader, the ids bucket's header (and
// inline page) and the file's generation. It returns errBboltLocked when
// bbolt's lock is busy.
func openPeek(path string) (*pageReader, []byte, Generation, error) {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, Generation{}, err
	}
	if !lockShared(f) {
		// Someone holds bbolt's own lock on the file: a program writing
		// it directly, not through package lock. The caller opens the
		// file, which waits for it, as every reader of the file does.
		f.Close()
		return nil, nil, Generation{}, errBboltLocked
	}
	m, fi, err := newestMeta(f)
	if err != nil {
		f.Close()
		return nil, nil, Generation{}, err
	}
	r := &pageReader{f: f, pageSize: int(m.pageSize), high: m.pgid}
	ids, err := r.schema(m.root)
	if err != nil {
		f.Close()
		return nil, nil, Generation{}, err
	}
	return r, ids, generationOf(fi, m), nil
}

// peekEachOpened is PeekEach through Open and a transaction.
func peekEachOpened(path string, fn func(Entry) error) (gen Generation, err error) {
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return Generation{}, err
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		if gen, err = ReadGeneration(path); err != nil {
			return err
		}
		return tx.ForEach(fn)
	})
	return gen, err
}

// peekOpened is Peek through Open and a transaction.
func peekOpened(path, id string) (e Entry, ok bool, gen Generation, err error) {
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return Entry{}, false, Generation{}, err
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		if gen, err = ReadGeneration(path); err != nil {
			return err
		}
		e, ok, err = tx.Get(id)
		return err
	})
	return e, ok, gen, err
}

// bbolt's page layout (go.etcd.io/bbolt/internal/common/page.go): a
// 16-byte header (id u64, flags u16, count u16, overflow u32), then count
// elements of 16 bytes, then their keys and values.
const (
	branchPageFlag = 0x01
	leafPageFlag   = 0x02
	bucketLeafFlag = 0x01 // a leaf element whose value is a bucket
	elementSize    = 16
	bucketHdrSize  = 16 // root pgid u64, sequence u64; an inline bucket's page follows
	maxDepth       = 32 // far beyond any tree of 65,535 names
)

// errDamaged is what a page that breaks bbolt's layout gives.
var errDamaged = fmt.Errorf("%w: a page does not hold what bbolt writes", ErrDamaged)

// pageReader reads a bbolt file's pages with pread, checking each against
// the file's high-water mark and its own bounds.
type pageReader struct {
	f        *os.File
	pageSize int
	high     uint64 // the meta page's pgid: pages at or past it are not in use
	buf      []byte
}

// schema checks the registry's schema as checkSchema does and returns
// the ids bucket's header (and inline page), copied.
func (r *pageReader) schema(root uint64) ([]byte, error) {
	if r.pageSize < pageHeaderSize+metaSize {
		return nil, errDamaged
	}
	if r.pageSize > maxPeekPage {
		return nil, errTooBig
	}
	// The three buckets are in the root bucket's tree, which for a
	// registry is one leaf: their headers are copied, as later reads
	// reuse the buffer.
	buckets := map[string][]byte{}
	for _, name := range [][]byte{bucketMeta, bucketIDs, bucketPorts} {
		v, isBucket, err := r.get(root, nil, name)
		if err != nil {
			return nil, err
		}
		if v == nil || !isBucket || len(v) < bucketHdrSize {
			return nil, fmt.Errorf("%w: a bbolt database without portfor's buckets", ErrNotRegistry)
		}
		buckets[string(name)] = bytes.Clone(v)
	}
	app, _, err := r.bucketGetOne(buckets[string(bucketMeta)], keyApp)
	if err != nil {
		return nil, err
	}
	app = bytes.Clone(app) // the next read reuses the buffer
	schema, _, err := r.bucketGetOne(buckets[string(bucketMeta)], keySchema)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(app, appName) {
		return nil, fmt.Errorf("%w: a bbolt database without portfor's buckets", ErrNotRegistry)
	}
	if len(schema) != 4 {
		return nil, fmt.Errorf("%w: no schema version", ErrNotRegistry)
	}
	if n := binary.BigEndian.Uint32(schema); n > SchemaVersion {
		return nil, fmt.Errorf("%w: schema %d, this build reads up to %d", ErrNewerSchema, n, SchemaVersion)
	}
	return buckets[string(bucketIDs)], nil
}

// bucketRoot is the bucket whose header is b as each walks it: its root
// page, or its inline page.
func bucketRoot(b []byte) walkFrom {
	if root := binary.LittleEndian.Uint64(b); root != 0 {
		return walkFrom{page: root}
	}
	return walkFrom{inline: b[bucketHdrSize:]}
}

// walkFrom is where each starts: a page, or an inline bucket's page.
type walkFrom struct {
	page   uint64
	inline []byte
}

// each calls fn with the key and value of every leaf element under from,
// in key order. budget bounds the pages read, so a damaged tree whose
// branches point back up cannot make the walk go on and on.
func (r *pageReader) each(from walkFrom, depth int, budget *uint64, fn func(k, v []byte) error) error {
	if depth >= maxDepth {
		return errDamaged
	}
	p := from.inline
	if p == nil {
		if *budget == 0 {
			return errDamaged
		}
		*budget--
		var err error
		if p, err = r.page(from.page); err != nil {
			return err
		}
	}
	if len(p) < pageHeaderSize {
		return errDamaged
	}
	flags := binary.LittleEndian.Uint16(p[8:])
	count := int(binary.LittleEndian.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		return errDamaged
	}
	switch {
	case flags&branchPageFlag != 0:
		// The children are noted before the walk reads them into r.buf,
		// over p: eight bytes each, not a copy of the page.
		children := make([]uint64, count)
		for i := range children {
			children[i] = binary.LittleEndian.Uint64(p[pageHeaderSize+i*elementSize+8:])
		}
		for _, c := range children {
			if err := r.each(walkFrom{page: c}, depth+1, budget, fn); err != nil {
				return err
			}
		}
	case flags&leafPageFlag != 0:
		// fn reads no page, so p stays as it is through the loop.
		for i := range count {
			el := pageHeaderSize + i*elementSize
			k, ok := leafKey(p, i)
			if !ok {
				return errDamaged
			}
			vs := int(binary.LittleEndian.Uint32(p[el+12:]))
			v, ok := slice(p, el+int(binary.LittleEndian.Uint32(p[el+4:]))+len(k), vs)
			if !ok {
				return errDamaged
			}
			if binary.LittleEndian.Uint32(p[el:])&bucketLeafFlag != 0 {
				v = nil // a nested bucket, which the ids bucket never has: bbolt's cursor gives no value
			}
			if err := fn(k, v); err != nil {
				return err
			}
		}
	default:
		return errDamaged
	}
	return nil
}

// bucketGetOne returns key's value in the bucket whose header is b; the
// value is valid until the next read.
func (r *pageReader) bucketGetOne(b, key []byte) ([]byte, bool, error) {
	root := binary.LittleEndian.Uint64(b)
	var inline []byte
	if root == 0 {
		inline = b[bucketHdrSize:]
	}
	return r.get(root, inline, key)
}

// get walks the tree whose root is page root (or the inline page, when
// given) down to key's leaf and returns its value and whether it is a
// bucket; nil when key is not there.
func (r *pageReader) get(root uint64, inline, key []byte) ([]byte, bool, error) {
	p := inline
	for range maxDepth {
		if p == nil {
			var err error
			if p, err = r.page(root); err != nil {
				return nil, false, err
			}
		}
		if len(p) < pageHeaderSize {
			return nil, false, errDamaged
		}
		flags := binary.LittleEndian.Uint16(p[8:])
		count := int(binary.LittleEndian.Uint16(p[10:]))
		if pageHeaderSize+count*elementSize > len(p) {
			return nil, false, errDamaged
		}
		switch {
		case flags&branchPageFlag != 0:
			if count == 0 {
				return nil, false, errDamaged
			}
			// The last element whose key is at or before key (the first
			// when key comes before them all), as bbolt's cursor seeks.
			i, err := search(p, count, key, branchKey)
			if err != nil {
				return nil, false, err
			}
			if i == count || !bytes.Equal(mustKey(p, i, branchKey), key) {
				i = max(i-1, 0)
			}
			root = binary.LittleEndian.Uint64(p[pageHeaderSize+i*elementSize+8:])
			p = nil
		case flags&leafPageFlag != 0:
			i, err := search(p, count, key, leafKey)
			if err != nil {
				return nil, false, err
			}
			if i == count || !bytes.Equal(mustKey(p, i, leafKey), key) {
				return nil, false, nil
			}
			el := p[pageHeaderSize+i*elementSize:]
			fl, pos := binary.LittleEndian.Uint32(el), int(binary.LittleEndian.Uint32(el[4:]))
			ks, vs := int(binary.LittleEndian.Uint32(el[8:])), int(binary.LittleEndian.Uint32(el[12:]))
			start := pageHeaderSize + i*elementSize + pos + ks
			if pos < 0 || vs < 0 || start < 0 || start+vs > len(p) || start+vs < start {
				return nil, false, errDamaged
			}
			return p[start : start+vs], fl&bucketLeafFlag != 0, nil
		default:
			return nil, false, errDamaged
		}
	}
	return nil, false, errDamaged
}

// keyFunc returns element i's key of page p, or false when it lies outside p.
type keyFunc func(p []byte, i int) ([]byte, bool)

// branchKey is a branch element's key: pos u32, ksize u32, pgid u64.
func branchKey(p []byte, i int) ([]byte, bool) {
	el := pageHeaderSize + i*elementSize
	pos, ks := int(binary.LittleEndian.Uint32(p[el:])), int(binary.LittleEndian.Uint32(p[el+4:]))
	return slice(p, el+pos, ks)
}

// leafKey is a leaf element's key: flags u32, pos u32, ksize u32, vsize u32.
func leafKey(p []byte, i int) ([]byte, bool) {
	el := pageHeaderSize + i*elementSize
	pos, ks := int(binary.LittleEndian.Uint32(p[el+4:])), int(binary.LittleEndian.Uint32(p[el+8:]))
	return slice(p, el+pos, ks)
}

// slice returns p[off:off+n], or false when that is not within p.
func slice(p []byte, off, n int) ([]byte, bool) {
	if off < 0 || n < 0 || off+n < off || off+n > len(p) {
		return nil, false
	}
	return p[off : off+n], true
}

// mustKey is key(p, i) for an i search already read.
func mustKey(p []byte, i int, key keyFunc) []byte {
	k, _ := key(p, i)
	return k
}

// search returns the first of p's count elements whose key is at or
// after want (count when none is).
func search(p []byte, count int, want []byte, key keyFunc) (int, error) {
	lo, hi := 0, count
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		k, ok := key(p, mid)
		if !ok {
			return 0, errDamaged
		}
		if bytes.Compare(k, want) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < count {
		if _, ok := key(p, lo); !ok {
			return 0, errDamaged
		}
	}
	return lo, nil
}

// page reads page id and its overflow pages.
func (r *pageReader) page(id uint64) ([]byte, error) {
	// Pages 0 and 1 are the meta pages; the tree's pages lie after them,
	// below the high-water mark.
	if id < 2 || id >= r.high {
		return nil, errDamaged
	}
	if cap(r.buf) < r.pageSize {
		r.buf = make([]byte, r.pageSize)
	}
	p := r.buf[:r.pageSize]
	if err := r.readAt(p, id); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint64(p) != id {
		return nil, errDamaged
	}
	overflow := uint64(binary.LittleEndian.Uint32(p[12:]))
	if overflow == 0 {
		return p, nil
	}
	if overflow >= r.high-id {
		return nil, errDamaged
	}
	if overflow >= maxPeekPage/uint64(r.pageSize) {
		return nil, errTooBig
	}
	n := int(overflow+1) * r.pageSize
	big := make([]byte, n)
	copy(big, p)
	if err := r.readAt(big[r.pageSize:], id+1); err != nil {
		return nil, err
	}
	r.buf = big
	return big, nil
}

// readAt reads len(p) bytes from page id on.
func (r *pageReader) readAt(p []byte, id uint64) error {
	n, err := r.f.ReadAt(p, int64(id)*int64(r.pageSize))
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, os.ErrClosed) {
		return errDamaged
	}
	return fmt.Errorf("%w: %w", errDamaged, err)
}
