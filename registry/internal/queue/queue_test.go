package queue

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/procinfo"
)

func newQueue(t *testing.T) *Queue {
	t.Helper()
	return New(Config{Dir: filepath.Join(t.TempDir(), "registry.db.pending"), FilePerm: 0o600, DirPerm: 0o700, Group: -1})
}

func me(t *testing.T) procinfo.Identity {
	t.Helper()
	id, err := procinfo.Lookup(os.Getpid())
	require.NoError(t, err)
	return id
}

// gone returns the identity of a process that has exited.
func gone(t *testing.T) procinfo.Identity {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return procinfo.Identity{PID: cmd.Process.Pid, Start: 1}
}

func payloads(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, string(it.Payload))
	}
	return out
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	return err == nil
}

func TestEnqueueDrainRetire(t *testing.T) {
	q := newQueue(t)
	var tickets []*Ticket
	for _, p := range []string{"one", "two", "three"} {
		tk, err := q.Enqueue(me(t), []byte(p))
		require.NoError(t, err)
		tickets = append(tickets, tk)
	}
	fi, err := os.Stat(q.cfg.Dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	// A caller takes back a request no holder has taken.
	assert.False(t, tickets[2].Withdraw(), "not taken yet")
	assert.True(t, tickets[2].Taken())

	items, err := q.Drain(1)
	require.NoError(t, err)
	assert.Equal(t, []string{"one"}, payloads(items), "oldest first, at most max")
	assert.Equal(t, os.Geteuid(), items[0].Owner)
	assert.True(t, tickets[0].Taken(), "drained is taken (claimed): its caller can no longer take it back")
	assert.False(t, tickets[1].Taken())

	// A claimed request still there when the lock is next held belongs to a
	// holder that died before retiring it: the next drain takes it again.
	items, err = q.Drain(10)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two"}, payloads(items))
	q.Answer(items, [][]byte{[]byte("8000"), nil})
	b, ok := tickets[0].Answer()
	assert.True(t, ok)
	assert.Equal(t, "8000", string(b))
	_, ok = tickets[1].Answer()
	assert.False(t, ok, "refused: no answer")
	assert.True(t, tickets[0].Withdraw(), "taken before it was withdrawn")
	items, err = q.Drain(10)
	require.NoError(t, err)
	assert.Empty(t, items)
	names, err := os.ReadDir(q.cfg.Dir)
	require.NoError(t, err)
	assert.Empty(t, names, "nothing left")

	_, err = q.Enqueue(me(t), make([]byte, MaxPayload+1))
	assert.Error(t, err)
}

func TestDrainOfAMissingDirectoryIsEmpty(t *testing.T) {
	q := newQueue(t)
	items, err := q.Drain(10)
	require.NoError(t, err)
	assert.Empty(t, items)
	entries, err := q.Scan()
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.False(t, exists(t, q.cfg.Dir), "draining creates nothing")
}

// What a killed caller leaves behind, its request and its half-written
// file, goes at the next drain, without being read; a live caller's
// half-written file stays.
func TestDrainRemovesWhatDeadCallersLeft(t *testing.T) {
	q := newQueue(t)
	dead := gone(t)
	_, err := q.Enqueue(dead, []byte("orphan"))
	require.NoError(t, err)
	d, err := q.openDir(false)
	require.NoError(t, err)
	deadPartial := Name{Partial: true, Time: time.Now(), Asker: dead, rand: 1}.String()
	livePartial := Name{Partial: true, Time: time.Now(), Asker: me(t), rand: 2}.String()
	require.NoError(t, d.Create(deadPartial, 0o600, []byte("half")))
	require.NoError(t, d.Create(livePartial, 0o600, []byte("half")))
	d.Close()

	entries, err := q.Scan()
	require.NoError(t, err)
	states := map[State]int{}
	for _, e := range entries {
		states[e.State]++
	}
	assert.Equal(t, map[State]int{Abandoned: 2, Partial: 1}, states)

	items, err := q.Drain(10)
	require.NoError(t, err)
	assert.Empty(t, items)
	names, err := os.ReadDir(q.cfg.Dir)
	require.NoError(t, err)
	require.Len(t, names, 1)
	assert.Equal(t, livePartial, names[0].Name())
}

// Files of version 1 of the queue belong to a running older binary, whose
// callers carry out their own requests: they are never read, and removed
// only once stale.
func TestOldVersionFilesAreLeftUntilStale(t *testing.T) {
	q := newQueue(t)
	require.NoError(t, os.Mkdir(q.cfg.Dir, 0o700))
	v1 := "portfor-request 1\nkind stable\nid web\nport 0\nowner 1 1\nasker 1 1\ndir \"/\"\ncmd \"\"\n"
	old := []string{"req-abc", "req-abc.fifo", "req-abc.ans", "tmp-def"}
	for _, n := range old {
		require.NoError(t, os.WriteFile(filepath.Join(q.cfg.Dir, n), []byte(v1), 0o600))
	}
	items, err := q.Drain(10)
	require.NoError(t, err)
	assert.Empty(t, items, "never read as a request")
	for _, n := range old {
		assert.True(t, exists(t, filepath.Join(q.cfg.Dir, n)), n)
	}
	then := time.Now().Add(-staleAfter - time.Minute)
	for _, n := range old {
		require.NoError(t, os.Chtimes(filepath.Join(q.cfg.Dir, n), then, then))
	}
	_, err = q.Drain(10)
	require.NoError(t, err)
	for _, n := range old {
		assert.False(t, exists(t, filepath.Join(q.cfg.Dir, n)), n)
	}
}

func TestForeignNamesAreNeverTouched(t *testing.T) {
	q := newQueue(t)
	require.NoError(t, os.Mkdir(q.cfg.Dir, 0o700))
	foreign := []string{"unrelated", "q2-garbage", "q2-0000000000000001-1-1-0-0000000", ".hidden"}
	for _, n := range foreign {
		require.NoError(t, os.WriteFile(filepath.Join(q.cfg.Dir, n), nil, 0o600))
	}
	then := time.Now().Add(-time.Hour)
	for _, n := range foreign {
		require.NoError(t, os.Chtimes(filepath.Join(q.cfg.Dir, n), then, then))
	}
	_, err := q.Drain(10)
	require.NoError(t, err)
	entries, err := q.Scan()
	require.NoError(t, err)
	require.Len(t, entries, len(foreign))
	for _, e := range entries {
		assert.Equal(t, Foreign, e.State, e.File)
		assert.Error(t, q.Remove(e), "Remove refuses %s", e.File)
	}
	for _, n := range foreign {
		assert.True(t, exists(t, filepath.Join(q.cfg.Dir, n)), n)
	}
	assert.Error(t, q.Remove(Entry{File: "../escape", State: Abandoned}))
}

// One user flooding the queue gets at most MaxPerUser of each batch.
func TestDrainTakesAtMostMaxPerUser(t *testing.T) {
	q := newQueue(t)
	for i := range MaxPerUser + 10 {
		_, err := q.Enqueue(me(t), []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	items, err := q.Drain(1000)
	require.NoError(t, err)
	require.Len(t, items, MaxPerUser)
	assert.Equal(t, "0", string(items[0].Payload), "oldest first")
}

func TestNameRoundTrip(t *testing.T) {
	n := Name{Time: time.Unix(0, 1_700_000_000_123_456_789), Asker: procinfo.Identity{PID: 4242, Start: 99, NS: 4026531836}, rand: 0xdeadbeef}
	got, err := ParseName(n.String())
	require.NoError(t, err)
	assert.Equal(t, n.String(), got.String())
	assert.Equal(t, n.Asker, got.Asker)
	assert.True(t, n.Time.Equal(got.Time))
	n.Partial = true
	got, err = ParseName(n.String())
	require.NoError(t, err)
	assert.True(t, got.Partial)
	for _, bad := range []string{"", "q2-", "req-1", "q2-17a0000000000000-1-1-0-deadbeef-x", "q2-17a0000000000000-0-1-0-deadbeef",
		"q2-17a0000000000000-01-1-0-deadbeef", "q2-17a0000000000000-+1-1-0-deadbeef", "q2-17A0000000000000-1-1-0-deadbeef"} {
		_, err := ParseName(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func FuzzParseName(f *testing.F) {
	f.Add(Name{Time: time.Unix(0, 1_700_000_000_123_456_789), Asker: procinfo.Identity{PID: 4242, Start: 99, NS: 1}, rand: 7}.String())
	f.Add(Name{Partial: true, Time: time.Unix(1, 0), Asker: procinfo.Identity{PID: 1}}.String())
	f.Add("req-abc")
	f.Add("q2-0000000000000000-1-0-0-00000000")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if n.String() != s || n.Asker.PID <= 0 || strings.ContainsAny(s, "/\x00") {
			t.Fatalf("ParseName(%q) = %+v", s, n)
		}
	})
}

// The enqueue time in a request's name orders the queue and decides
// nothing else: after the clock jumped, requests stamped far in the past or
// the future (before the jump back, or after a jump forward) are carried out
// like any other, the order following the stamps; a request of a caller
// that is gone goes whatever its stamp; and a version 1 file whose mtime
// is in the future (the clock went back after it was written) is kept
// until it is stale by the clock, never removed early.
func TestClockJumpsChangeOnlyTheOrder(t *testing.T) {
	q := newQueue(t)
	require.NoError(t, os.Mkdir(q.cfg.Dir, 0o700))
	d, err := q.openDir(false)
	require.NoError(t, err)
	now := time.Now()
	stamps := map[string]time.Time{
		"future": now.Add(10 * 365 * 24 * time.Hour), // queued before the clock jumped back
		"now":    now,
		"past":   time.Unix(0, 1), // queued before the clock jumped forward
	}
	for p, at := range stamps {
		require.NoError(t, d.Create(Name{Time: at, Asker: me(t), rand: 1}.String(), 0o600, []byte(p)))
	}
	deadFuture := Name{Time: stamps["future"], Asker: gone(t), rand: 2}.String()
	require.NoError(t, d.Create(deadFuture, 0o600, []byte("dead")))
	d.Close()
	v1 := filepath.Join(q.cfg.Dir, "req-abc")
	require.NoError(t, os.WriteFile(v1, []byte("portfor-request 1\n"), 0o600))
	require.NoError(t, os.Chtimes(v1, stamps["future"], stamps["future"]))

	items, err := q.Drain(10)
	require.NoError(t, err)
	assert.Equal(t, []string{"past", "now", "future"}, payloads(items))
	assert.False(t, exists(t, filepath.Join(q.cfg.Dir, deadFuture)), "a dead caller's request goes, whatever its stamp")
	assert.True(t, exists(t, v1), "an old-version file from the future is not stale")

	// One item at a time, the one stamped in the future is still taken once
	// the others are retired.
	for _, want := range []string{"past", "now", "future"} {
		items, err := q.Drain(1)
		require.NoError(t, err)
		require.Equal(t, []string{want}, payloads(items))
		q.Retire(items...)
	}
}

// A request is removed unread once it has waited AbandonAfter, whoever its
// asker: even one of another pid namespace, whose liveness a drain does not
// spend a scan of /proc on.
func TestOldRequestsAreAbandoned(t *testing.T) {
	q := newQueue(t)
	foreign := me(t)
	foreign.NS = 1 // a namespace that is not ours
	_, err := q.Enqueue(foreign, []byte("fresh"))
	require.NoError(t, err)
	_, err = q.Enqueue(me(t), []byte("old"))
	require.NoError(t, err)
	names, err := os.ReadDir(q.cfg.Dir)
	require.NoError(t, err)
	require.Len(t, names, 2)
	then := time.Now().Add(-AbandonAfter - time.Minute)
	for _, n := range names {
		if p, err := ParseName(n.Name()); err == nil && p.Asker.NS != 1 {
			require.NoError(t, os.Chtimes(filepath.Join(q.cfg.Dir, n.Name()), then, then))
		}
	}
	items, err := q.Drain(10)
	require.NoError(t, err)
	assert.Equal(t, []string{"fresh"}, payloads(items), "a fresh request of another namespace is taken as alive")
	names, err = os.ReadDir(q.cfg.Dir)
	require.NoError(t, err)
	assert.Len(t, names, 1, "the old one is gone")
}

// A directory its owner (or, shared, its group) may not write to is not
// used: files left in it could never be removed by anyone else.
func TestAnUnwritableDirectoryIsRefused(t *testing.T) {
	q := newQueue(t)
	require.NoError(t, os.Mkdir(q.cfg.Dir, 0o500))
	_, err := q.Drain(10)
	assert.ErrorContains(t, err, "not writable by its owner")
	shared := New(Config{Dir: q.cfg.Dir, FilePerm: 0o660, DirPerm: 0o770, Group: os.Getgid()})
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(q.cfg.Dir, 65534, os.Getgid()))
		require.NoError(t, os.Chmod(q.cfg.Dir, 0o750))
		_, err = shared.Drain(10)
		assert.ErrorContains(t, err, "not writable by its group")
	}
}
