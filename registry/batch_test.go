package registry

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/store"
)

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := Open(filepath.Join(t.TempDir(), "registry.db"), Options{})
	require.NoError(t, err)
	return r
}

func TestBatchAssignsPendingRequestsAndAnswersThem(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.ForwardPort(ctx, "first", 0) // creates the registry
	require.NoError(t, err)

	me, err := procinfo.Lookup(os.Getpid())
	require.NoError(t, err)
	w, err := r.enqueue(request{Kind: store.Stable, ID: "queued", Owner: me, Asker: me, Dir: "/somewhere"})
	require.NoError(t, err)
	defer w.close()

	// A dead process's request is dropped, not assigned.
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	dead, err := r.enqueue(request{Kind: store.Stable, ID: "ghost", Owner: procinfo.Identity{PID: cmd.Process.Pid, Start: 1}, Asker: procinfo.Identity{PID: cmd.Process.Pid, Start: 1}})
	require.NoError(t, err)
	defer dead.close()

	_, err = r.ForwardPort(ctx, "second", 0)
	require.NoError(t, err)

	a, err := r.Lookup(ctx, "queued")
	require.NoError(t, err, "the batch assigned the queued request")
	assert.Equal(t, "/somewhere", a.Dir)
	if w.answer != nil {
		select {
		case p := <-w.answer.ports:
			assert.Equal(t, []int{a.Port}, p, "the waiter was told its port")
		case <-time.After(10 * time.Second):
			t.Fatal("the waiter was never answered")
		}
	}
	_, err = os.Stat(w.file)
	assert.ErrorIs(t, err, os.ErrNotExist, "an answered request is removed")

	_, err = r.Lookup(ctx, "ghost")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = os.Stat(dead.file)
	assert.ErrorIs(t, err, os.ErrNotExist, "a dead process's request is removed")
}

func TestMalformedPendingFilesAreRemoved(t *testing.T) {
	r := newTestRegistry(t)
	require.NoError(t, os.MkdirAll(r.pendingDir(), 0o700))
	junk := filepath.Join(r.pendingDir(), "req-junk")
	require.NoError(t, os.WriteFile(junk, []byte("hello"), 0o600))
	other := filepath.Join(r.pendingDir(), "unrelated")
	require.NoError(t, os.WriteFile(other, nil, 0o600))
	assert.Empty(t, r.pending())
	_, err := os.Stat(junk)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(other)
	assert.NoError(t, err, "files that are not requests are left alone")
}

func TestRequestRoundTrip(t *testing.T) {
	q := request{Kind: store.Stable, ID: "web", Suggested: 8000, Owner: procinfo.Identity{PID: 42, Start: 99}, Asker: procinfo.Identity{PID: 42, Start: 99}, Dir: "/a b/c"}
	got, err := parseRequest(q.marshal())
	require.NoError(t, err)
	assert.Equal(t, q, got)
	lease := request{Kind: store.Lease, Count: 3, Suggested: 15000, Ports: PortList{{First: 15000, Last: 15999}},
		Owner: procinfo.Identity{PID: 7, Start: 8}, Asker: procinfo.Identity{PID: 9, Start: 10}, Dir: "/d", Command: "go test ./..."}
	got, err = parseRequest(lease.marshal())
	require.NoError(t, err)
	assert.Equal(t, lease, got)

	good := "portfor-request 1\nkind stable\nid web\nport 0\nowner 1 1\nasker 1 1\ndir \"/\"\ncmd \"\"\n"
	_, err = parseRequest([]byte(good))
	require.NoError(t, err)
	for _, bad := range []string{
		"", "portfor-request 1\n", strings.Replace(good, "request 1", "request 2", 1),
		strings.Replace(good, "id web", "id bad id", 1), strings.Replace(good, "port 0", "port 70000", 1),
		strings.Replace(good, "owner 1 1", "owner 0 1", 1), strings.Replace(good, "owner 1 1", "owner 1", 1),
		strings.Replace(good, "kind stable", "kind other", 1), strings.Replace(good, "kind stable", "kind lease", 1),
		strings.Replace(good, "dir \"/\"", "dir /", 1), good + "extra", good + "id again\n", good + "color blue\n",
		strings.TrimSuffix(good, "\n"),
		"portfor-request 1\nkind lease\ncount 0\nport 0\nowner 1 1\nasker 1 1\n",
		"portfor-request 1\nkind lease\ncount 65\nport 0\nowner 1 1\nasker 1 1\n",
		"portfor-request 1\nkind lease\ncount 1\nports 9-1\nport 0\nowner 1 1\nasker 1 1\n",
	} {
		_, err := parseRequest([]byte(bad))
		assert.ErrorIs(t, err, errBadRequest, "%q", bad)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(request{Kind: store.Stable, ID: "web", Suggested: 8000, Owner: procinfo.Identity{PID: 42, Start: 99}, Asker: procinfo.Identity{PID: 42, Start: 99}, Dir: "/x"}.marshal())
	f.Add(request{Kind: store.Lease, Count: 3, Suggested: 15000, Ports: PortList{{First: 15000, Last: 15999}, {First: 20000, Last: 20000}},
		Owner: procinfo.Identity{PID: 7, Start: 8}, Asker: procinfo.Identity{PID: 9, Start: 10}, Dir: "/d \"q\"", Command: "go test\n./..."}.marshal())
	f.Add(request{Kind: store.Lease, Count: 1, Owner: procinfo.Identity{PID: 2, Start: 1}, Asker: procinfo.Identity{PID: 3, Start: 1}}.marshal())
	f.Add([]byte("portfor-request 1\nkind stable\nid a\nport 1\nowner 1 0\nasker 1 0\n"))
	f.Add([]byte("portfor-request 1\n\n\n\n\n"))
	f.Add([]byte("portfor-request 1\nweb\n-1\n1 1\n/\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := parseRequest(b)
		if err != nil {
			return
		}
		if (q.Kind == store.Stable && ValidateID(q.ID) != nil) || q.Suggested < 0 || q.Suggested > 65535 || q.Owner.PID <= 0 || q.Asker.PID <= 0 {
			t.Fatalf("parseRequest accepted %+v", q)
		}
		again, err := parseRequest(q.marshal())
		if err != nil || again.marshal() == nil || string(again.marshal()) != string(q.marshal()) {
			t.Fatalf("round trip %+v -> %+v, %v", q, again, err)
		}
	})
}
