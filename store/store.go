package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/portfor/portfor/internal/safefile"
)

// SchemaVersion is the registry layout this package reads and writes.
const SchemaVersion = 1

var (
	bucketIDs   = []byte("ids")
	bucketPorts = []byte("ports")
	bucketMeta  = []byte("meta")
	keySchema   = []byte("schema")
	keyApp      = []byte("app")
	appName     = []byte("portfor")
)

var (
	// ErrNotRegistry is returned when the file is not a portfor registry:
	// empty, not a bbolt database, or a bbolt database of another program.
	ErrNotRegistry = errors.New("not a portfor registry")
	// ErrTruncated is returned when the file is shorter than its own header says.
	ErrTruncated = errors.New("registry file is truncated")
	// ErrNewerSchema is returned when the file was written by a newer portfor.
	ErrNewerSchema = errors.New("registry written by a newer portfor")
	// ErrPortConflict is returned by [Tx.Put] when the port is held by another id.
	ErrPortConflict = errors.New("port held by another id")
	// ErrInconsistent is matched by the [*CheckError] of [Tx.Check] when the
	// two indexes disagree ([IndexDrift]).
	ErrInconsistent = errors.New("registry indexes disagree")
	// ErrDamaged is matched by the [*CheckError] of [Tx.Check] when bbolt
	// finds its own page structure damaged ([PageDamage]).
	ErrDamaged = errors.New("registry file is damaged")
)

// Options configure [Open]. The zero value opens read-write.
type Options struct {
	// ReadOnly opens the file for reading only; a missing file is then
	// reported as an error wrapping fs.ErrNotExist instead of being created.
	ReadOnly bool
	// Timeout bounds the wait for bbolt's own lock on the file, which only
	// another program using the file directly (not through package lock) can
	// hold. Zero means 1s.
	Timeout time.Duration
	// NoSync skips the fdatasyncs of each commit. A commit is then safe
	// against the process dying (the kernel keeps what was written) but not
	// against the machine losing power or crashing, after which the file
	// may be corrupt. Only for data that is worthless after a reboot.
	NoSync bool
	// Perm is the permission of a file Open creates; zero means 0600. It is
	// set exactly, whatever the umask (0660 for a registry shared by a group).
	Perm os.FileMode
}

// DB is an open registry file.
type DB struct {
	bolt *bolt.DB
	path string
}

// Open opens the registry at path, creating it (and its directory, 0700)
// when missing unless opts.ReadOnly is set. It refuses, without changing a
// byte, files that are not registries or were written by a newer schema.
func Open(path string, opts Options) (*DB, error) {
	db, err := open(path, opts)
	if errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly {
		if err = create(path, cmp.Or(opts.Perm, 0o600)); err == nil {
			db, err = open(path, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	return db, nil
}

func open(path string, opts Options) (*DB, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		ReadOnly: opts.ReadOnly,
		Timeout:  timeout,
		// Keep bbolt's freelist on disk: rebuilding it at every read-write
		// open (NoFreelistSync) was measured at 3x the cost of the open.
		// bbolt would write a freelist at open time into a file that has
		// none; checkHeader refuses such files, so opening never writes.
		NoFreelistSync: false,
		NoSync:         opts.NoSync,
		OpenFile:       openChecked,
	})
	switch {
	case err == nil:
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("bbolt file lock held by another program: %w", err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w (%v)", ErrNotRegistry, err)
	default:
		return nil, err
	}
	db := &DB{bolt: b, path: path}
	if err := b.View(func(tx *bolt.Tx) error { return checkSchema(tx) }); err != nil {
		_ = b.Close()
		return nil, err
	}
	return db, nil
}

// openChecked opens the file for bbolt (never creating it: creation goes
// through create) and refuses files bbolt would misread or crash on.
func openChecked(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := openFile(path, flag&^os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openFile opens an existing registry file through package safefile: no
// following a link, no blocking on a FIFO put in its place. Something other
// than a regular file is not a registry.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := safefile.Open(path, flag, perm)
	if errors.Is(err, syscall.EISDIR) { // opened for writing: the kernel says so before safefile can
		err = &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (is a directory)", safefile.ErrNotRegular)}
	}
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, fmt.Errorf("%w: %w", ErrNotRegistry, err)
	}
	return f, err
}

// bbolt's meta page, as laid out on disk after the 16-byte page header.
const (
	pageHeaderSize = 16
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaSize       = 64 // magic..checksum
)

type metaInfo struct {
	pageSize uint32
	root     uint64 // the root bucket's page
	freelist uint64
	pgid     uint64
	txid     uint64
}

// noFreelist is bbolt's freelist page id for "not stored" (NoFreelistSync).
const noFreelist = ^uint64(0)

// checkHeader reads bbolt's two meta pages and checks that the file is a
// bbolt file at least as long as its newest valid meta page says. bbolt maps
// the file and would fault on pages past its end.
func checkHeader(f *os.File) error {
	_, _, err := newestMeta(f)
	return err
}

// newestMeta reads bbolt's two meta pages, checks the file (a regular file,
// opened by openFile) against the newest valid one and returns it.
func newestMeta(f *os.File) (metaInfo, os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return metaInfo{}, nil, err
	}
	size := fi.Size()
	if size == 0 {
		return metaInfo{}, nil, fmt.Errorf("%w: empty file", ErrNotRegistry)
	}
	var buf [pageHeaderSize + metaSize]byte
	best, ok := metaInfo{}, false
	m0, ok0 := readMeta(f, 0, buf[:])
	if ok0 {
		best, ok = m0, true
	}
	// The second meta page sits one page in; try the first page's size, then common sizes.
	for _, ps := range []uint32{m0.pageSize, 4096, 16384, 65536} {
		if ps == 0 {
			continue
		}
		if m1, ok1 := readMeta(f, int64(ps), buf[:]); ok1 && m1.pageSize == ps {
			if !ok || m1.txid > best.txid {
				best, ok = m1, true
			}
			break
		}
	}
	if !ok {
		return metaInfo{}, nil, fmt.Errorf("%w: no valid bbolt header", ErrNotRegistry)
	}
	if need := int64(best.pgid) * int64(best.pageSize); size < need {
		return metaInfo{}, nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, size, need)
	}
	if best.freelist == noFreelist {
		// portfor always stores the freelist; bbolt would write one into
		// this file the moment it is opened read-write.
		return metaInfo{}, nil, fmt.Errorf("%w: a bbolt database without a stored freelist", ErrNotRegistry)
	}
	return best, fi, nil
}

// Generation identifies one committed state of a registry file: it changes
// with every commit and when the file is replaced by another.
//
// It is the file's identity (device and inode), bbolt's transaction id and
// the file's status change time (ctime). The first two alone do not tell a
// replaced file from the old one: another registry copied over it in place
// keeps the inode, a new file may be given the inode of one just removed,
// and registries made alike have the same transaction ids. Every write
// sets the ctime to now, and no user can set it back (only the clock), so
// a replaced file has a later one. On a kernel whose timestamps are coarse
// (Linux before 6.13, whose ticks are milliseconds; since then a change
// after a stat gets a fine-grained time), a replacement within the tick of
// the file's last change still passes for it. A changed ctime with nothing
// else changed (a chmod, an open that writes nothing) is a false change,
// which costs a caller a read of the file and nothing worse.
type Generation struct {
	file  os.FileInfo
	txid  uint64
	ctime int64 // nanoseconds; the modification time where the OS gives no ctime
}

// generationOf is the state of the file fi describes, whose newest header
// is m: the one way a Generation is made, so that every maker records all
// of it.
func generationOf(fi os.FileInfo, m metaInfo) Generation {
	return Generation{file: fi, txid: m.txid, ctime: changeTime(fi)}
}

// Same reports whether g and h are the same state of the same file.
func (g Generation) Same(h Generation) bool {
	return g.file != nil && h.file != nil && g.txid == h.txid && g.ctime == h.ctime && os.SameFile(g.file, h.file)
}

// ReadGeneration reads which committed state the file at path is in, from
// its header alone (a few small reads, no mapping). Like a transaction, it
// is only meaningful under the registry's lock.
func ReadGeneration(path string) (Generation, error) {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return Generation{}, fmt.Errorf("registry %s: %w", path, err)
	}
	defer f.Close()
	m, fi, err := newestMeta(f)
	if err != nil {
		return Generation{}, fmt.Errorf("registry %s: %w", path, err)
	}
	return generationOf(fi, m), nil
}

func readMeta(f *os.File, off int64, buf []byte) (metaInfo, bool) {
	if n, _ := f.ReadAt(buf, off); n != len(buf) {
		return metaInfo{}, false
	}
	m := buf[pageHeaderSize:]
	le := binary.LittleEndian // bbolt writes native order; portfor's platforms are little-endian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return metaInfo{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return metaInfo{}, false
	}
	return metaInfo{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// checkSchema refuses bbolt files of other programs and newer schemas.
func checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || !bytes.Equal(meta.Get(keyApp), appName) || tx.Bucket(bucketIDs) == nil || tx.Bucket(bucketPorts) == nil {
		return fmt.Errorf("%w: a bbolt database without portfor's buckets", ErrNotRegistry)
	}
	v := meta.Get(keySchema)
	if len(v) != 4 {
		return fmt.Errorf("%w: no schema version", ErrNotRegistry)
	}
	if n := binary.BigEndian.Uint32(v); n > SchemaVersion {
		return fmt.Errorf("%w: schema %d, this build reads up to %d", ErrNewerSchema, n, SchemaVersion)
	}
	return nil
}

// create writes an empty registry to a temporary file beside path and
// renames it into place, so path never holds a half-made registry.
func create(path string, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // a no-op once renamed
	if err := os.Remove(tmpPath); err != nil {
		return err // bbolt initialises only an empty or missing file; make it missing
	}
	b, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: false})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketIDs, bucketPorts, bucketMeta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], SchemaVersion)
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keySchema, v[:]); err != nil {
			return err
		}
		return meta.Put(keyApp, appName)
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmpPath, perm) // exactly, whatever the umask
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return syncDir(dir)
}

// Path returns the file's path.
func (db *DB) Path() string { return db.path }

// Close closes the file, releasing bbolt's lock on it.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close registry %s: %w", db.path, err)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(newTx(tx)) })
}

// Begin starts a transaction, read-write when writable is set. The caller
// must end it with [Tx.Commit] or [Tx.Rollback]; a DB runs one read-write
// transaction at a time, and a goroutine must not hold a read-only and a
// read-write transaction on the same DB at once.
func (db *DB) Begin(writable bool) (*Tx, error) {
	tx, err := db.bolt.Begin(writable)
	if err != nil {
		return nil, fmt.Errorf("registry %s: begin: %w", db.path, err)
	}
	return newTx(tx), nil
}

// Update runs fn in a read-write transaction, committed (and synced to disk)
// when fn returns nil and rolled back, leaving the file as it was, otherwise.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(newTx(tx)) })
}
