package registry

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry/internal/queue"
	"github.com/portfor/portfor/store"
)

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := Open(filepath.Join(t.TempDir(), "registry.db"), Options{})
	require.NoError(t, err)
	return r
}

// waitQueued waits, at most 10 s, until one request is queued, whole.
func waitQueued(t *testing.T, r *Registry) {
	t.Helper()
	require.Eventually(t, func() bool {
		entries, err := r.queue.Scan()
		return err == nil && len(entries) == 1 && entries[0].State == queue.Waiting
	}, 10*time.Second, time.Millisecond, "the caller never queued")
}

func self(t *testing.T) procinfo.Identity {
	t.Helper()
	me, err := procinfo.Lookup(os.Getpid())
	require.NoError(t, err)
	return me
}

// A request left in the queue is carried out by whoever runs the next
// batch; its asker learns its port from the registry, and a dead asker's
// request, or one that is not a valid request, is never carried out.
func TestTheNextBatchCarriesOutQueuedRequests(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.ForwardPort(ctx, "first", 0) // creates the registry
	require.NoError(t, err)

	queued, err := r.queue.Enqueue(self(t), request{ID: "queued", Dir: "/somewhere"}.marshal())
	require.NoError(t, err)
	defer queued.Withdraw()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	ghost, err := r.queue.Enqueue(procinfo.Identity{PID: cmd.Process.Pid, Start: 1}, request{ID: "ghost"}.marshal())
	require.NoError(t, err)
	defer ghost.Withdraw()
	junk, err := r.queue.Enqueue(self(t), []byte("portfor-request 2\nid bad id\nport 0\ndir \"\"\n"))
	require.NoError(t, err)
	defer junk.Withdraw()

	_, err = r.ForwardPort(ctx, "second", 0)
	require.NoError(t, err)

	a, err := r.Lookup(ctx, "queued")
	require.NoError(t, err, "the batch assigned the queued request")
	assert.Equal(t, "/somewhere", a.Dir)
	assert.True(t, queued.Taken(), "and retired it after the commit")
	_, err = r.Lookup(ctx, "ghost")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.True(t, ghost.Taken(), "a dead asker's request is removed")
	assert.True(t, junk.Taken(), "a malformed request is refused")
	list, err := r.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 3)
}

// A caller that finds the lock busy queues its request and is answered by
// the holder's batch, through the registry: no answer file, no FIFO.
func TestAQueuedCallerIsAnsweredByTheHoldersBatch(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	require.NoError(t, r.mkdirAll())
	held, err := lock.Acquire(ctx, r.lockPath, lock.Exclusive)
	require.NoError(t, err)

	type result struct {
		port int
		err  error
	}
	got := make(chan result, 1)
	go func() {
		p, err := r.ForwardPort(ctx, "waiter", 0)
		got <- result{p, err}
	}()
	waitQueued(t, r)
	jobs, err := r.runBatch(held, []request{{Kind: store.Stable, ID: "leader"}})
	require.NoError(t, err)
	require.NoError(t, jobs[0].err)
	res := <-got
	require.NoError(t, res.err)
	a, err := r.Lookup(ctx, "waiter")
	require.NoError(t, err)
	assert.Equal(t, a.Port, res.port)
	assert.NotEqual(t, jobs[0].ports[0], res.port)
	entries, err := r.queue.Scan()
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing left behind")
}

// A request that fails inside a batch is taken out and the others are
// carried out without it (bbolt's trySolo): the caller's own failed request
// is then carried out alone and gets its own error, and a queued one is
// retired unanswered.
func TestAFailingRequestDoesNotSinkTheBatch(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	me := self(t)
	impossible := request{Kind: store.Lease, Count: 1, Ports: PortList{{First: busy, Last: busy}}, Owner: me}

	queuedTicket, err := r.queue.Enqueue(me, request{ID: "queued"}.marshal())
	require.NoError(t, err)
	defer queuedTicket.Withdraw()
	require.NoError(t, r.mkdirAll())
	held, err := lock.Acquire(ctx, r.lockPath, lock.Exclusive)
	require.NoError(t, err)
	jobs, err := r.runBatch(held, []request{
		{Kind: store.Stable, ID: "a"}, impossible, {Kind: store.Lease, Count: 2, Owner: me},
	})
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	assert.NoError(t, jobs[0].err)
	assert.ErrorIs(t, jobs[1].err, ErrNoPortAvailable)
	assert.NoError(t, jobs[2].err)
	assert.Len(t, jobs[2].ports, 2)
	for _, id := range []string{"a", "queued"} {
		_, err := r.Lookup(ctx, id)
		assert.NoError(t, err, "%s committed", id)
	}
	list, err := r.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 4, "a, queued and two leases; nothing for the failed request")
	assert.True(t, queuedTicket.Taken())
}

// Requests of version 1, left by an older portfor still running, are not
// read as requests of this version: their callers carry them out
// themselves.
func TestOldVersionRequestsAreNotMisread(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.ForwardPort(ctx, "first", 0)
	require.NoError(t, err)
	pending := r.path + ".pending"
	require.NoError(t, os.MkdirAll(pending, 0o700))
	v1 := "portfor-request 1\nkind stable\nid old-one\nport 0\nowner 1 1\nasker 1 1\ndir \"/\"\ncmd \"\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(pending, "req-abc"), []byte(v1), 0o600))
	_, err = r.ForwardPort(ctx, "second", 0)
	require.NoError(t, err)
	_, err = r.Lookup(ctx, "old-one")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = os.Stat(filepath.Join(pending, "req-abc"))
	assert.NoError(t, err, "left for its own caller")
}

// An assignment that is already there costs no write: no commit, no sync.
func TestABatchWithNothingToWriteCommitsNothing(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	p, err := r.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	before, err := store.ReadGeneration(r.path)
	require.NoError(t, err)
	require.NoError(t, r.mkdirAll())
	held, err := lock.Acquire(ctx, r.lockPath, lock.Exclusive)
	require.NoError(t, err)
	jobs, err := r.runBatch(held, []request{{Kind: store.Stable, ID: "web"}})
	require.NoError(t, err)
	assert.Equal(t, []int{p}, jobs[0].ports)
	after, err := store.ReadGeneration(r.path)
	require.NoError(t, err)
	assert.True(t, before.Same(after), "no transaction was committed")
}

func TestZeroRegistryGivesAClearError(t *testing.T) {
	ctx := context.Background()
	for _, r := range []*Registry{nil, {}} {
		_, err := r.ForwardPort(ctx, "web", 0)
		assert.ErrorIs(t, err, errNotOpen)
		_, err = r.Lease(ctx, LeaseOptions{})
		assert.ErrorIs(t, err, errNotOpen)
		_, err = r.List(ctx)
		assert.ErrorIs(t, err, errNotOpen)
		_, err = r.Hold(ctx)
		assert.ErrorIs(t, err, errNotOpen)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	q := request{Kind: store.Stable, ID: "web", Suggested: 8000, Dir: "/a b/c\n\"q\""}
	got, err := parseRequest(q.marshal())
	require.NoError(t, err)
	assert.Equal(t, q, got)

	lease := request{Kind: store.Lease, Count: 3, Suggested: 15000, Ports: PortList{{First: 15000, Last: 15999}},
		Owner: procinfo.Identity{PID: 7, Start: 8, NS: 9}, Dir: "/d", Command: "go test\n./..."}
	got, err = parseRequest(lease.marshal())
	require.NoError(t, err)
	assert.Equal(t, lease, got)
	anywhere := request{Kind: store.Lease, Count: 1, Owner: procinfo.Identity{PID: 7}}
	got, err = parseRequest(anywhere.marshal())
	require.NoError(t, err)
	assert.Equal(t, anywhere, got)

	good := "portfor-request 2\nid web\nport 0\ndir \"/\"\n"
	_, err = parseRequest([]byte(good))
	require.NoError(t, err)
	for _, bad := range []string{
		"", "portfor-request 2\n", strings.Replace(good, "request 2", "request 1", 1),
		strings.Replace(good, "id web", "id bad id", 1), strings.Replace(good, "port 0", "port 70000", 1),
		strings.Replace(good, "port 0", "port -1", 1), strings.Replace(good, "dir \"/\"", "dir /", 1),
		good + "extra", good + "id again\n", strings.TrimSuffix(good, "\n"),
		"portfor-request 1\nkind stable\nid web\nport 0\nowner 1 1\nasker 1 1\ndir \"/\"\ncmd \"\"\n",
		"portfor-request 2\nlease 0\nnear 0\nports -\nowner 7 8 9\ndir \"\"\ncmd \"\"\n",
		"portfor-request 2\nlease 65\nnear 0\nports -\nowner 7 8 9\ndir \"\"\ncmd \"\"\n",
		"portfor-request 2\nlease 1\nnear 0\nports 9-1\nowner 7 8 9\ndir \"\"\ncmd \"\"\n",
		"portfor-request 2\nlease 1\nnear 0\nports -\nowner 0 8 9\ndir \"\"\ncmd \"\"\n",
		"portfor-request 2\nlease 1\nnear 0\nports -\nowner 7 8\ndir \"\"\ncmd \"\"\n",
	} {
		_, err := parseRequest([]byte(bad))
		assert.ErrorIs(t, err, errBadRequest, "%q", bad)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(request{ID: "web", Suggested: 8000, Dir: "/x"}.marshal())
	f.Add(request{ID: "a", Dir: "/d \"q\"\n"}.marshal())
	f.Add([]byte("portfor-request 2\nid a\nport +1\ndir \"\"\n"))
	f.Add([]byte("portfor-request 1\nkind stable\nid a\nport 1\nowner 1 0\nasker 1 0\n"))
	f.Add([]byte("portfor-request 2\n\n\n\n"))
	f.Add(request{Kind: store.Lease, Count: 2, Ports: PortList{{First: 15000, Last: 15999}}, Owner: procinfo.Identity{PID: 7, Start: 8, NS: 9}, Dir: "/d", Command: "c"}.marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := parseRequest(b)
		if err != nil {
			return
		}
		if (q.Kind == store.Stable && ValidateID(q.ID) != nil) || (q.Kind == store.Lease && (q.Count < 1 || q.Owner.PID <= 0)) || q.Suggested < 0 || q.Suggested > 65535 {
			t.Fatalf("parseRequest accepted %+v", q)
		}
		again, err := parseRequest(q.marshal())
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("round trip %+v -> %+v, %v", q, again, err)
		}
	})
}

// A lock file removed while it is held (a member of a shared directory
// without the sticky bit can) lets a newcomer lock a new file at the same
// path; the old holder must then not commit, or two would write at once.
func TestAHolderWhoseLockFileWasReplacedDoesNotCommit(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.ForwardPort(ctx, "first", 0)
	require.NoError(t, err)
	held, err := lock.Acquire(ctx, r.lockPath, lock.Exclusive)
	require.NoError(t, err)
	require.NoError(t, os.Remove(r.lockPath))
	newcomer, ok, err := lock.TryAcquire(r.lockPath, lock.Exclusive)
	require.NoError(t, err)
	require.True(t, ok, "the newcomer locks the new file")
	defer newcomer.Unlock()

	_, err = r.runBatch(held, []request{{Kind: store.Stable, ID: "split"}})
	require.ErrorIs(t, err, lock.ErrReplaced)
	require.NoError(t, newcomer.Unlock())
	_, err = r.Lookup(ctx, "split")
	assert.ErrorIs(t, err, ErrNotFound, "nothing was committed under the stale lock")
}

// A caller whose context ends while it waits in the queue takes its
// request back: nothing is left behind, and it is told why.
func TestACallerThatGivesUpTakesItsRequestBack(t *testing.T) {
	r := newTestRegistry(t)
	require.NoError(t, r.mkdirAll())
	held, err := lock.Acquire(context.Background(), r.lockPath, lock.Exclusive)
	require.NoError(t, err)
	defer held.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := r.ForwardPort(ctx, "impatient", 0)
		got <- err
	}()
	waitQueued(t, r)
	cancel()
	err = <-got
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrLocked, "a lock timeout error, naming the lock file")
	entries, err := r.queue.Scan()
	require.NoError(t, err)
	assert.Empty(t, entries, "its request is taken back")
}

// A caller whose time runs out after a holder has claimed its request
// cannot take it back any more: it waits for that batch and reports what
// it committed, instead of failing while its lease stays held for nobody's
// knowing.
func TestACallerWhoseRequestWasClaimedGetsItsResult(t *testing.T) {
	r := newTestRegistry(t)
	require.NoError(t, r.mkdirAll())
	held, err := lock.Acquire(context.Background(), r.lockPath, lock.Exclusive)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		a   Assignment
		err error
	}
	got := make(chan result, 1)
	go func() {
		a, err := r.Lease(ctx, LeaseOptions{})
		got <- result{a, err}
	}()
	waitQueued(t, r)
	items, err := r.queue.Drain(maxBatch) // a holder claims it...
	require.NoError(t, err)
	require.Len(t, items, 1)
	cancel()                       // ...and then the caller's time is up
	_, err = r.runBatch(held, nil) // the holder carries it out (the claimed request is taken again)
	require.NoError(t, err)
	res := <-got
	require.NoError(t, res.err, "the committed lease is the caller's")
	list, err := r.List(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, res.a.Port, list[0].Port, "the lease it reports is the one held")
}
