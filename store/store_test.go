package store_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/portfor/portfor/store"
)

func mustOpen(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.Open(path, store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close() })
	return db
}

func regPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "state", "portfor", "registry.db")
}

func stable(id string, port int) store.Entry {
	now := time.Unix(1700000000, 0)
	return store.Entry{ID: id, Port: port, Kind: store.Stable, Created: now, Updated: now, Dir: "/src/app"}
}

func TestOpenCreatesPrivateFileAndDirectory(t *testing.T) {
	path := regPath(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Close())
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(filepath.Dir(path))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	}
	left, err := filepath.Glob(filepath.Join(filepath.Dir(path), ".*new*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary files left behind")
}

func TestReadOnlyOpenOfMissingFileCreatesNothing(t *testing.T) {
	path := regPath(t)
	_, err := store.Open(path, store.Options{ReadOnly: true})
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
	_, err = os.Stat(filepath.Dir(path))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestPutGetDeleteSurviveReopen(t *testing.T) {
	path := regPath(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		require.NoError(t, tx.Put(stable("web", 8000)))
		return tx.Put(stable("api", 8001))
	}))
	require.NoError(t, db.Close())

	db, err := store.Open(path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *store.Tx) error {
		e, ok, err := tx.Get("web")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, stable("web", 8000).Port, e.Port)
		assert.Equal(t, "/src/app", e.Dir)
		assert.True(t, e.Created.Equal(time.Unix(1700000000, 0)))
		owner, ok := tx.PortOwner(8001)
		assert.True(t, ok)
		assert.Equal(t, "api", owner)
		assert.Equal(t, 2, tx.Len())
		var ids []string
		require.NoError(t, tx.ForEach(func(e store.Entry) error { ids = append(ids, e.ID); return nil }))
		assert.Equal(t, []string{"api", "web"}, ids)
		return tx.Check()
	}))
	require.NoError(t, db.Close())

	db = mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		e, ok, err := tx.Delete("web")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, 8000, e.Port)
		_, ok, err = tx.Delete("web")
		require.NoError(t, err)
		assert.False(t, ok)
		_, ok = tx.PortOwner(8000)
		assert.False(t, ok, "port index entry removed with the id")
		return tx.Check()
	}))
}

func TestPutKeepsIndexesTogether(t *testing.T) {
	db := mustOpen(t, regPath(t))
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		require.NoError(t, tx.Put(stable("web", 8000)))
		err := tx.Put(stable("api", 8000))
		require.ErrorIs(t, err, store.ErrPortConflict)
		assert.Contains(t, err.Error(), `"web"`)

		require.NoError(t, tx.Put(stable("web", 8100)), "moving an id frees its old port")
		_, held := tx.PortOwner(8000)
		assert.False(t, held)
		require.NoError(t, tx.Put(stable("api", 8000)))
		return tx.Check()
	}))
}

func TestUpdateErrorRollsBack(t *testing.T) {
	path := regPath(t)
	db := mustOpen(t, path)
	err := db.Update(func(tx *store.Tx) error {
		require.NoError(t, tx.Put(stable("web", 8000)))
		return os.ErrInvalid
	})
	require.ErrorIs(t, err, os.ErrInvalid)
	require.NoError(t, db.View(func(tx *store.Tx) error {
		_, ok, err := tx.Get("web")
		assert.False(t, ok)
		return err
	}))
}

// driftedRegistry makes a registry with web=8000 and api=8001, then damages
// its port index behind the store's back: 8000 unindexed, 9000 → "ghost".
func driftedRegistry(t *testing.T) string {
	t.Helper()
	path := regPath(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		require.NoError(t, tx.Put(stable("web", 8000)))
		return tx.Put(stable("api", 8001))
	}))
	require.NoError(t, db.Close())
	raw, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		require.NoError(t, tx.Bucket([]byte("ports")).Delete([]byte{0x1f, 0x40}))  // 8000
		return tx.Bucket([]byte("ports")).Put([]byte{0x23, 0x28}, []byte("ghost")) // 9000
	}))
	require.NoError(t, raw.Close())
	return path
}

func TestCheckFindsIndexDrift(t *testing.T) {
	path := driftedRegistry(t)
	db := mustOpen(t, path)
	require.NoError(t, db.View(func(tx *store.Tx) error {
		err := tx.Check()
		require.ErrorIs(t, err, store.ErrInconsistent)
		assert.NotErrorIs(t, err, store.ErrDamaged, "bbolt's pages are sound")
		var ce *store.CheckError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, []store.Problem{
			{Kind: store.IndexDrift, Text: `id "web" has port 8000, port index says ""`},
			{Kind: store.IndexDrift, Text: `port 9000 points to id "ghost", which does not hold it`},
		}, ce.Problems)
		assert.Equal(t, "index drift: id \"web\" has port 8000, port index says \"\"\n"+
			"index drift: port 9000 points to id \"ghost\", which does not hold it", err.Error())
		return nil
	}))
}

// damagedRegistry makes a registry big enough for its buckets to have
// branch pages, then points a branch page's second child at its first, so
// that bbolt's own check finds a page referenced twice and one unreachable.
func damagedRegistry(t *testing.T) string {
	t.Helper()
	path := regPath(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		for i := range 300 {
			if err := tx.Put(stable(fmt.Sprintf("id-%03d", i), 10000+i)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	const pageSize, header, branchElem = 4096, 16, 16 // branch element: pos, ksize uint32; pgid uint64
	le := binary.LittleEndian
	damaged := false
	for off := 3 * pageSize; off+pageSize <= len(b) && !damaged; off += pageSize {
		p := b[off : off+pageSize]
		if flags, count := le.Uint16(p[8:]), le.Uint16(p[10:]); flags == 0x01 && count >= 2 { // a branch page
			first := p[header+8 : header+branchElem]
			copy(p[header+branchElem+8:header+2*branchElem], first)
			damaged = true
		}
	}
	require.True(t, damaged, "no branch page to damage")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestCheckTellsPageDamageFromIndexDrift(t *testing.T) {
	db := mustOpen(t, damagedRegistry(t))
	require.NoError(t, db.View(func(tx *store.Tx) error {
		err := tx.Check()
		require.ErrorIs(t, err, store.ErrDamaged)
		var ce *store.CheckError
		require.ErrorAs(t, err, &ce)
		var damage []string
		for _, p := range ce.Problems {
			if p.Kind == store.PageDamage {
				damage = append(damage, p.Text)
				assert.True(t, strings.HasPrefix(p.String(), "page damage: "), p.String())
			}
		}
		assert.Contains(t, strings.Join(damage, "\n"), "multiple references")
		assert.Contains(t, strings.Join(damage, "\n"), "unreachable unfreed")
		assert.Equal(t, store.PageDamage, ce.Problems[0].Kind, "page damage comes first")
		return nil
	}))
}

func TestCheckOfASoundRegistryIsNil(t *testing.T) {
	db := mustOpen(t, regPath(t))
	require.NoError(t, db.Update(func(tx *store.Tx) error { return tx.Put(stable("web", 8000)) }))
	require.NoError(t, db.View(func(tx *store.Tx) error {
		err := tx.Check()
		assert.Nil(t, err, "a plain nil, not a typed nil inside an error")
		return err
	}))
	assert.Equal(t, "ProblemKind(0)", store.ProblemKind(0).String())
}

// refusedFiles builds files that are not usable registries.
func refusedFiles(t *testing.T, dir string) map[string]error {
	t.Helper()
	files := map[string]error{}
	write := func(name string, data []byte, want error) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
		files[name] = want
	}
	write("empty.db", nil, store.ErrNotRegistry)
	write("garbage.db", []byte("port-for config\n[ports]\nweb = 8000\n"), store.ErrNotRegistry)
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	write("noise.db", big, store.ErrNotRegistry)

	// A real registry, cut short.
	full := filepath.Join(dir, "full.db")
	db := mustOpen(t, full)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		for i := 0; i < 300; i++ {
			if err := tx.Put(stable("svc-"+string(rune('a'+i%26))+string(rune('a'+i/26)), 10000+i)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	data, err := os.ReadFile(full)
	require.NoError(t, err)
	write("truncated.db", data[:len(data)/2], store.ErrTruncated)
	write("onepage.db", data[:4096], store.ErrTruncated)

	// bbolt databases that are not portfor's, or are from a newer portfor.
	foreign := filepath.Join(dir, "foreign.db")
	raw, err := bolt.Open(foreign, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("settings"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}))
	require.NoError(t, raw.Close())
	files["foreign.db"] = store.ErrNotRegistry

	newer := filepath.Join(dir, "newer.db")
	require.NoError(t, os.WriteFile(newer, data, 0o600))
	raw, err = bolt.Open(newer, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], store.SchemaVersion+1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v[:])
	}))
	require.NoError(t, raw.Close())
	files["newer.db"] = store.ErrNewerSchema

	// A bbolt file without a stored freelist: bbolt would write one at open.
	nofree := filepath.Join(dir, "nofreelist.db")
	raw, err = bolt.Open(nofree, 0o600, &bolt.Options{NoFreelistSync: true})
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("ids"))
		return err
	}))
	require.NoError(t, raw.Close())
	files["nofreelist.db"] = store.ErrNotRegistry
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.db"), 0o700))
	files["dir.db"] = nil
	return files
}

func TestBadFilesAreRefusedAndLeftUntouched(t *testing.T) {
	dir := t.TempDir()
	for name, want := range refusedFiles(t, dir) {
		path := filepath.Join(dir, name)
		before, _ := os.ReadFile(path)
		fiBefore, err := os.Stat(path)
		require.NoError(t, err)
		for _, ro := range []bool{false, true} {
			db, err := store.Open(path, store.Options{ReadOnly: ro})
			if db != nil {
				db.Close()
			}
			require.Error(t, err, "%s (readonly=%v) must be refused", name, ro)
			if want != nil {
				assert.ErrorIs(t, err, want, "%s", name)
			}
			assert.Contains(t, err.Error(), path, "the error names the file")
			after, _ := os.ReadFile(path)
			assert.Equal(t, before, after, "%s must be left byte-for-byte as it was", name)
			fiAfter, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, fiBefore.Size(), fiAfter.Size())
			assert.Equal(t, fiBefore.Mode(), fiAfter.Mode())
		}
	}
}

func TestSymlinkedRegistryIsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	mustOpen(t, real).Close()
	link := filepath.Join(dir, "registry.db")
	require.NoError(t, os.Symlink(real, link))
	_, err := store.Open(link, store.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), link)
}

func TestEntryRoundTrip(t *testing.T) {
	e := store.Entry{ID: "x", Port: 65535, Kind: store.Lease, Created: time.Unix(5, 6), Updated: time.Unix(7, 8),
		OwnerPID: 4242, OwnerStart: 1 << 40, Dir: "/home/me", Command: "go test ./...", OwnerNS: 4026532837}
	b, err := e.MarshalBinary()
	require.NoError(t, err)
	var got store.Entry
	require.NoError(t, got.UnmarshalBinary(b))
	got.ID = "x"
	assert.Equal(t, e.Port, got.Port)
	assert.Equal(t, e.Kind, got.Kind)
	assert.True(t, e.Created.Equal(got.Created))
	assert.True(t, e.Updated.Equal(got.Updated))
	assert.Equal(t, e.OwnerPID, got.OwnerPID)
	assert.Equal(t, e.OwnerStart, got.OwnerStart)
	assert.Equal(t, e.Dir, got.Dir)
	assert.Equal(t, e.Command, got.Command)
	assert.Equal(t, e.OwnerNS, got.OwnerNS)
	assert.Equal(t, "lease", got.Kind.String())

	// Every cut fails but the one at the end of the fields an entry had
	// before OwnerNS: that is an older entry.
	old := len(b) - uvarintLen(e.OwnerNS)
	for i := 0; i < len(b); i++ {
		if i != old {
			assert.Error(t, got.UnmarshalBinary(b[:i]), "truncated at %d", i)
		}
	}
	_, err = store.Entry{Port: 0}.MarshalBinary()
	assert.Error(t, err)
}

// TestALongCommandLineIsCutNotLost: a lease's owner may have a command
// line of megabytes (Linux allows 2 MiB). It is cut at a character's
// start, so the entry decodes and the registry stays readable; a Dir that
// long cannot be a path and is refused.
func TestALongCommandLineIsCutNotLost(t *testing.T) {
	path := regPath(t)
	db := mustOpen(t, path)
	long := strings.Repeat("é", 1<<20) // 2 MiB, two bytes a character
	e := stable("runner", 40000)
	e.Kind, e.Command = store.Lease, "go test "+long
	require.NoError(t, db.Update(func(tx *store.Tx) error { return tx.Put(e) }))
	var got store.Entry
	require.NoError(t, db.View(func(tx *store.Tx) (err error) {
		got, _, err = tx.Get("runner")
		return err
	}))
	assert.True(t, strings.HasPrefix(e.Command, got.Command))
	assert.LessOrEqual(t, len(got.Command), 1<<16)
	assert.Greater(t, len(got.Command), 1<<16-4)
	assert.True(t, utf8.ValidString(got.Command), "cut inside a character")
	require.NoError(t, db.View(func(tx *store.Tx) error { return tx.ForEach(func(store.Entry) error { return nil }) }))

	e.Dir = "/" + long
	_, err := e.MarshalBinary()
	assert.Error(t, err)
}

func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }

// oldEntry encodes e as version 1 did before OwnerNS was appended: the
// layout docs/design.md gives for it.
func oldEntry(e store.Entry) []byte {
	b := []byte{1, byte(e.Kind)}
	b = binary.AppendUvarint(b, uint64(e.Port))
	b = binary.AppendVarint(b, e.Created.UnixNano())
	b = binary.AppendVarint(b, e.Updated.UnixNano())
	b = binary.AppendVarint(b, int64(e.OwnerPID))
	b = binary.AppendUvarint(b, e.OwnerStart)
	for _, s := range []string{e.Dir, e.Command} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// An entry written before OwnerNS decodes with OwnerNS 0 (unknown), and one
// written now is what the older layout was plus trailing bytes, which older
// readers skip.
func TestEntryOwnerNSIsAppended(t *testing.T) {
	e := store.Entry{Port: 8000, Kind: store.Lease, Created: time.Unix(5, 6), Updated: time.Unix(7, 8),
		OwnerPID: 7, OwnerStart: 99, Dir: "/d", Command: "c"}

	var got store.Entry
	got.OwnerNS = 12 // overwritten, not kept
	require.NoError(t, got.UnmarshalBinary(oldEntry(e)))
	assert.Equal(t, e.OwnerPID, got.OwnerPID)
	assert.Equal(t, e.Command, got.Command)
	assert.Zero(t, got.OwnerNS, "an older entry has no namespace: unknown")

	e.OwnerNS = 4026531836
	b, err := e.MarshalBinary()
	require.NoError(t, err)
	old := oldEntry(e)
	require.Equal(t, old, b[:len(old)], "OwnerNS only appends")
	assert.Equal(t, binary.AppendUvarint(nil, e.OwnerNS), b[len(old):])
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, e.OwnerNS, got.OwnerNS)

	// Request, appended after OwnerNS, and only when set.
	e.Request = "q2-0000000000000001-7-99-0-00000001"
	withRequest, err := e.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, withRequest[:len(b)], "Request only appends")
	require.NoError(t, got.UnmarshalBinary(withRequest))
	assert.Equal(t, e.Request, got.Request)
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Empty(t, got.Request, "no Request: none")

	// A later writer's fields after Request are ignored.
	require.NoError(t, got.UnmarshalBinary(append(withRequest, 0x05, 'x', 'y')))
	assert.Equal(t, e.OwnerNS, got.OwnerNS)
	assert.Equal(t, e.Request, got.Request)
	assert.Equal(t, e.Command, got.Command)
	e.Request = ""
	// A cut in OwnerNS is damage, not an older entry.
	require.Greater(t, uvarintLen(e.OwnerNS), 1)
	assert.ErrorIs(t, got.UnmarshalBinary(b[:len(b)-1]), store.ErrBadEntry)

	// Written and read through the store, too.
	db := mustOpen(t, regPath(t))
	e.ID = "lease-8000"
	require.NoError(t, db.Update(func(tx *store.Tx) error { return tx.Put(e) }))
	require.NoError(t, db.View(func(tx *store.Tx) error {
		got, ok, err := tx.Get(e.ID)
		require.True(t, ok)
		assert.Equal(t, e.OwnerNS, got.OwnerNS)
		return err
	}))
}

func FuzzEntryUnmarshal(f *testing.F) {
	good, _ := stable("web", 8000).MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0})
	f.Add([]byte{1, 2, 0xff, 0xff, 0x03, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	lease, _ := store.Entry{Port: 9000, Kind: store.Lease, OwnerPID: 7, OwnerStart: 9, OwnerNS: 4026531836}.MarshalBinary()
	f.Add(lease)
	f.Add(lease[:len(lease)-5]) // as written before OwnerNS
	f.Fuzz(func(t *testing.T, b []byte) {
		var e store.Entry
		if err := e.UnmarshalBinary(b); err != nil {
			return
		}
		if e.Port < 1 || e.Port > 65535 || (e.Kind != store.Stable && e.Kind != store.Lease) || e.OwnerPID < 0 {
			t.Fatalf("decoded an invalid entry %+v", e)
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var e2 store.Entry
		if err := e2.UnmarshalBinary(again); err != nil || e2.Port != e.Port || e2.Dir != e.Dir || e2.Command != e.Command ||
			e2.OwnerPID != e.OwnerPID || e2.OwnerStart != e.OwnerStart || e2.OwnerNS != e.OwnerNS {
			t.Fatalf("round trip: %+v vs %+v (%v)", e, e2, err)
		}
	})
}

func TestRebuildPortIndexRepairsDrift(t *testing.T) {
	path := driftedRegistry(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		changed, clashes, err := tx.RebuildPortIndex()
		require.NoError(t, err)
		assert.Equal(t, []string{`indexed port 8000 → "web"`, `removed port 9000 → "ghost": no such assignment`}, changed)
		assert.Empty(t, clashes)
		return tx.Check()
	}))
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		changed, _, err := tx.RebuildPortIndex()
		assert.Empty(t, changed, "nothing left to repair")
		return err
	}))
}

func TestRebuildPortIndexKeepsThePortOfAnUnreadableEntry(t *testing.T) {
	path := regPath(t)
	db := mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error { return tx.Put(stable("web", 8000)) }))
	require.NoError(t, db.Close())
	raw, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("ids")).Put([]byte("web"), []byte{9, 9, 9}) // undecodable
	}))
	require.NoError(t, raw.Close())
	db = mustOpen(t, path)
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		changed, clashes, err := tx.RebuildPortIndex()
		require.NoError(t, err)
		assert.Empty(t, changed)
		require.Len(t, clashes, 1)
		assert.Contains(t, clashes[0], `id "web" cannot be read`)
		owner, held := tx.PortOwner(8000)
		assert.True(t, held, "port 8000 stays taken while its entry exists")
		assert.Equal(t, "web", owner)
		return nil
	}))
}
