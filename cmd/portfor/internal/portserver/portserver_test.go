//go:build linux

package portserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/internal/portserverclient"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry"
)

// server runs a Server on a fresh file-system socket and registry.
type server struct {
	addr string
	reg  *registry.Registry
	pool registry.PortList
	log  *syncBuffer
	stop func() error
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func startServer(t *testing.T, dir string, readTimeout time.Duration) *server {
	t.Helper()
	reg, err := registry.Open(filepath.Join(dir, "registry.db"), registry.Options{})
	require.NoError(t, err)
	pool, err := registry.ParsePorts("15000-24999")
	require.NoError(t, err)
	addr := filepath.Join(dir, "ps.sock")
	l, closeFn, err := portserver.Listen(addr, 0)
	require.NoError(t, err)
	s := &server{addr: addr, reg: reg, pool: pool, log: newSyncBuffer()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &portserver.Server{Registry: reg, Pool: pool, Log: s.log, ReadTimeout: readTimeout}
	go func() { done <- srv.Serve(ctx, l) }()
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-done
		closeFn()
		return err
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func ask(t *testing.T, addr string, pid int) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return portserverclient.Ask(ctx, addr, pid)
}

// raw sends b and returns everything the server answers before closing.
func raw(t *testing.T, addr string, b []byte, closeWrite bool) string {
	t.Helper()
	c, err := net.Dial("unix", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	if len(b) > 0 {
		_, _ = c.Write(b) // the server may stop reading (and close) early
	}
	if closeWrite {
		require.NoError(t, c.(*net.UnixConn).CloseWrite())
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func TestServerLeasesFromThePoolToTheClient(t *testing.T) {
	s := startServer(t, t.TempDir(), time.Second)
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		p, err := ask(t, s.addr, os.Getpid())
		require.NoError(t, err)
		assert.True(t, s.pool.Contains(p), "port %d from the pool", p)
		assert.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
	list, err := s.reg.List(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 20)
	for _, a := range list {
		assert.Equal(t, registry.Lease, a.Kind)
		assert.Equal(t, os.Getpid(), a.OwnerPID, "leased to the pid the client sent")
	}
	assert.Contains(t, s.log.String(), fmt.Sprintf("pid %d: port ", os.Getpid()))
}

func TestServerRefusesBadRequestsAndKeepsServing(t *testing.T) {
	s := startServer(t, t.TempDir(), 200*time.Millisecond)
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	for name, req := range map[string]string{
		"empty":       "",
		"not a pid":   "hello\n",
		"negative":    "-5\n",
		"pid 0":       "0\n",
		"init":        "1\n",
		"no process":  fmt.Sprintf("%d\n", gone.Process.Pid),
		"huge":        strings.Repeat("9", 1<<20),
		"binary":      "\x00\xff\n",
		"two numbers": "12 34\n",
	} {
		assert.Equal(t, "", raw(t, s.addr, []byte(req), true), "%s: closed without an answer", name)
	}
	// A client that connects and sends nothing is cut off after the read timeout.
	start := time.Now()
	assert.Equal(t, "", raw(t, s.addr, nil, false))
	assert.Less(t, time.Since(start), 5*time.Second)
	// Half-closed after the pid, without a newline: still a request.
	out := raw(t, s.addr, []byte(fmt.Sprint(os.Getpid())), true)
	assert.Regexp(t, `^\d+\n$`, out)

	p, err := ask(t, s.addr, os.Getpid())
	require.NoError(t, err, "still serving")
	assert.True(t, s.pool.Contains(p))
	assert.Contains(t, s.log.String(), "refused")
}

func TestLeasesSurviveARestartAndAgreeWithTheLibrary(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, time.Second)
	first, err := ask(t, s.addr, os.Getpid())
	require.NoError(t, err)
	require.NoError(t, s.stop())
	_, err = os.Lstat(s.addr)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket file is removed on stop")

	s = startServer(t, dir, time.Second)
	// The library, beside the server, never gets the server's port...
	a, err := s.reg.Lease(context.Background(), registry.LeaseOptions{Ports: registry.PortList{{First: first, Last: first + 1}}, Near: first})
	require.NoError(t, err)
	assert.Equal(t, first+1, a.Port)
	// ...and the restarted server gives out neither.
	for i := 0; i < 10; i++ {
		p, err := ask(t, s.addr, os.Getpid())
		require.NoError(t, err)
		assert.NotEqual(t, first, p)
		assert.NotEqual(t, a.Port, p)
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	l, closeFn, err := portserver.Listen(path, 0)
	require.NoError(t, err)
	_, _, err = portserver.Listen(path, 0)
	require.Error(t, err, "a live server keeps its socket")
	assert.Contains(t, err.Error(), "already answering")
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, closeFn())

	// Its socket file is left behind: a stale socket is replaced.
	_, err = os.Lstat(path)
	require.NoError(t, err)
	_, closeFn, err = portserver.Listen(path, 0)
	require.NoError(t, err)
	require.NoError(t, closeFn())

	file := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	_, _, err = portserver.Listen(file, 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a socket")
	b, _ := os.ReadFile(file)
	assert.Equal(t, "x", string(b), "never removes what is not a socket")

	_, _, err = portserver.Listen("", 0)
	assert.Error(t, err)
}

func TestAbstractAddress(t *testing.T) {
	addr := fmt.Sprintf("@portfor-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, closeFn, err := portserver.Listen(addr, 0)
	require.NoError(t, err)
	defer closeFn()
	reg, err := registry.Open(filepath.Join(t.TempDir(), "r.db"), registry.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&portserver.Server{Registry: reg}).Serve(ctx, l) }()
	p, err := ask(t, addr, os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, p, registry.MinPort)
	cancel()
	require.NoError(t, <-done)
}

func TestAskErrors(t *testing.T) {
	_, err := ask(t, filepath.Join(t.TempDir(), "none.sock"), os.Getpid())
	assert.Error(t, err)
	s := startServer(t, t.TempDir(), time.Second)
	_, err = ask(t, s.addr, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no port for pid 1")
}

func TestParseRequest(t *testing.T) {
	for in, want := range map[string]int{"1234\n": 1234, "2": 2, " 42 \r\n": 42} {
		got, err := portserver.ParseRequest([]byte(in))
		require.NoError(t, err, "%q", in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "\n", "1", "0", "-3", "+3", "x", "12 3", "99999999999999999999", strings.Repeat("1", 40)} {
		_, err := portserver.ParseRequest([]byte(in))
		assert.ErrorIs(t, err, portserver.ErrBadRequest, "%q", in)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"1234\n", "", "1", "abc", "\x00", "4294967296\n", " 7 "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := portserver.ParseRequest(b)
		if err != nil {
			if !errors.Is(err, portserver.ErrBadRequest) {
				t.Fatalf("ParseRequest(%q): %v", b, err)
			}
			return
		}
		if pid <= 1 || len(b) > portserver.MaxRequest {
			t.Fatalf("ParseRequest(%q) = %d", b, pid)
		}
	})
}

func TestAnswerArrivesWhenLeasingOutlastsTheReadTimeout(t *testing.T) {
	s := startServer(t, t.TempDir(), 50*time.Millisecond)
	_, err := ask(t, s.addr, os.Getpid()) // creates the registry
	require.NoError(t, err)
	l, err := lock.Acquire(context.Background(), s.reg.LockPath(), lock.Exclusive)
	require.NoError(t, err)
	release := time.AfterFunc(300*time.Millisecond, func() { l.Unlock() }) // longer than the read timeout
	defer release.Stop()
	start := time.Now()
	p, err := ask(t, s.addr, os.Getpid())
	require.NoError(t, err, "the answer must not be cut off by the read deadline")
	assert.True(t, s.pool.Contains(p))
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "the lease really waited for the lock")
}

// While the server holds the registry between batches, others still get
// through: their requests queue and the server's batches carry them out.
func TestOthersGetThroughWhileTheServerIsBusy(t *testing.T) {
	s := startServer(t, t.TempDir(), time.Second)
	stop := make(chan struct{})
	served := make(chan []int, 1)
	go func() {
		var got []int
		defer func() { served <- got }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p, err := portserverclient.Ask(context.Background(), s.addr, os.Getpid())
			if err != nil {
				return
			}
			got = append(got, p)
		}
	}()
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a, err := s.reg.Lease(ctx, registry.LeaseOptions{})
		cancel()
		require.NoError(t, err, "a lease beside a busy server")
		seen[a.Port] = true
		p, err := s.reg.ForwardPort(context.Background(), fmt.Sprintf("svc-%d", i), 0)
		require.NoError(t, err)
		seen[p] = true
	}
	close(stop)
	for _, p := range <-served {
		assert.False(t, seen[p], "port %d given to the server's client and to the library", p)
		seen[p] = true
	}
	assert.Greater(t, len(seen), 40)
}
