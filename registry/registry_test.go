package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/registry"
)

var ctx = context.Background()

func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort returns a port that was free a moment ago, from the OS.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestForwardPortIsStableAcrossHandles(t *testing.T) {
	reg := mustOpen(t)
	p1, err := reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, p1, registry.MinPort)
	assert.False(t, reg.IsEphemeral(p1))

	again, err := registry.Open(reg.Path(), registry.Options{})
	require.NoError(t, err)
	for _, suggested := range []int{0, 8000, p1 + 1} {
		p, err := again.ForwardPort(ctx, "web", suggested)
		require.NoError(t, err)
		assert.Equal(t, p1, p, "existing id keeps its port whatever is suggested (%d)", suggested)
	}
	a, err := again.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, p1, a.Port)
	assert.Equal(t, registry.Stable, a.Kind)
	assert.False(t, a.Created.IsZero())
	wd, _ := os.Getwd()
	assert.Equal(t, wd, a.Dir)
}

func TestForwardPortHonoursAFreeSuggestion(t *testing.T) {
	reg := mustOpen(t)
	p := freePort(t) // from the ephemeral range: honoured all the same when asked for
	got, err := reg.ForwardPort(ctx, "svc", p)
	require.NoError(t, err)
	assert.Equal(t, p, got)
}

func TestSuggestedPortHeldByAListenerIsNotGiven(t *testing.T) {
	listeners := []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp4", "0.0.0.0:0"},
		{"tcp6", "[::1]:0"},
		{"tcp", "[::]:0"},
	}
	for _, l := range listeners {
		t.Run(l.addr, func(t *testing.T) {
			if strings.HasPrefix(l.addr, "[") && !hasIPv6() {
				t.Skip("no IPv6 here")
			}
			ln, err := net.Listen(l.network, l.addr)
			require.NoError(t, err)
			defer ln.Close()
			held := ln.Addr().(*net.TCPAddr).Port

			reg := mustOpen(t)
			got, err := reg.ForwardPort(ctx, "svc", held)
			require.NoError(t, err)
			assert.NotEqual(t, held, got, "port %d is held by a listener on %s", held, l.addr)
			assert.False(t, reg.IsEphemeral(got), "a port found by search is outside the ephemeral range")
			assert.GreaterOrEqual(t, got, registry.MinPort)
		})
	}
}

func TestPortAssignedToAnotherIDIsNotGiven(t *testing.T) {
	reg := mustOpen(t)
	p := freePort(t)
	a, err := reg.ForwardPort(ctx, "first", p)
	require.NoError(t, err)
	require.Equal(t, p, a)
	b, err := reg.ForwardPort(ctx, "second", p)
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
}

func TestNearestSuitablePortAbove(t *testing.T) {
	reg := mustOpen(t)
	// Two ids asking for the same taken port get ascending, distinct ports above it.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	held := ln.Addr().(*net.TCPAddr).Port
	a, err := reg.ForwardPort(ctx, "a", held)
	require.NoError(t, err)
	b, err := reg.ForwardPort(ctx, "b", held)
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
	if a > held { // no wrap-around
		assert.Greater(t, b, a)
	}
}

// TestSuggestionFallsBackToTheNearestPort: asked for a taken port, a new
// name gets the nearest free one above it, registered with IANA or not, but
// never the usual port of a common local service nor one in the ephemeral
// range.
func TestSuggestionFallsBackToTheNearestPort(t *testing.T) {
	reg := mustOpen(t)
	free := func(ports ...int) bool {
		for _, p := range ports {
			if ok, err := netprobe.CanBind(p, netprobe.TCP); err != nil || !ok {
				return false
			}
		}
		return true
	}
	if !free(5171, 5172, 5174) {
		t.Skip("5171, 5172 or 5174 is in use on this host")
	}
	require.NoError(t, reg.Bind(ctx, "busy", 5170))
	for i, want := range []int{5171, 5172, 5174} { // 5173 is Vite's
		got, err := reg.ForwardPort(ctx, fmt.Sprint("svc", i), 5170)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}

	eph, err := portrange.Ephemeral()
	require.NoError(t, err)
	if eph.First <= registry.MinPort || eph.Last >= portrange.MaxPort || !free(eph.Last+1) {
		t.Skipf("ephemeral range %v leaves no port right after it, or it is in use", eph)
	}
	require.NoError(t, reg.Bind(ctx, "below", eph.First-1))
	got, err := reg.ForwardPort(ctx, "above", eph.First-1)
	require.NoError(t, err)
	assert.Equal(t, eph.Last+1, got, "the ephemeral range %v is skipped", eph)
}

func TestReleaseThenForwardAgain(t *testing.T) {
	reg := mustOpen(t)
	p := freePort(t)
	got, err := reg.ForwardPort(ctx, "svc", p)
	require.NoError(t, err)
	rel, err := reg.Release(ctx, "svc")
	require.NoError(t, err)
	assert.Equal(t, got, rel.Port)
	assert.Equal(t, "svc", rel.ID)

	_, err = reg.Lookup(ctx, "svc")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	_, err = reg.Release(ctx, "svc")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	assert.Contains(t, err.Error(), `"svc"`)

	other, err := reg.ForwardPort(ctx, "other", p)
	require.NoError(t, err)
	assert.Equal(t, p, other, "a released port can be assigned again")
}

func TestBindIsStrict(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "nginx", 18080))
	require.NoError(t, reg.Bind(ctx, "nginx", 18080), "binding again to the same port is fine")

	err := reg.Bind(ctx, "nginx", 18081)
	require.ErrorIs(t, err, registry.ErrIDBound)
	var pe *registry.PortError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 18080, pe.Held)
	assert.Contains(t, err.Error(), "already holds port 18080")

	err = reg.Bind(ctx, "apache", 18080)
	require.ErrorIs(t, err, registry.ErrPortTaken)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "nginx", pe.Owner)
	assert.Contains(t, err.Error(), `already assigned to "nginx"`)

	p, err := reg.ForwardPort(ctx, "nginx", 0)
	require.NoError(t, err)
	assert.Equal(t, 18080, p)

	// Bind does not probe: a port in use by a running service can be recorded.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	require.NoError(t, reg.Bind(ctx, "running", ln.Addr().(*net.TCPAddr).Port))
}

func TestInvalidInputIsRejected(t *testing.T) {
	reg := mustOpen(t)
	badIDs := map[string]string{
		"":                        "empty",
		"my service":              "whitespace",
		"tab\there":               "whitespace",
		"host:8000":               "':'",
		"-flag":                   "'-'",
		"bell\a":                  "unprintable",
		"\xff\xfe":                "UTF-8",
		strings.Repeat("x", 201):  "longer than 200",
		"nbsp\u00a0":              "whitespace",
		"line\nbreak":             "whitespace",
		"zero\u200bwidth-space-x": "unprintable",
	}
	for id, reason := range badIDs {
		for name, call := range map[string]func() error{
			"ForwardPort": func() error { _, err := reg.ForwardPort(ctx, id, 0); return err },
			"Bind":        func() error { return reg.Bind(ctx, id, 9000) },
			"Lookup":      func() error { _, err := reg.Lookup(ctx, id); return err },
			"Release":     func() error { _, err := reg.Release(ctx, id); return err },
		} {
			err := call()
			require.ErrorIs(t, err, registry.ErrInvalidID, "%s(%q)", name, id)
			assert.Contains(t, err.Error(), reason, "%s(%q)", name, id)
			var ie *registry.IDError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, id, ie.ID)
		}
	}
	for _, good := range []string{"web", "Web", "my-project/db", "a.b_c@2", "ünïcode", strings.Repeat("x", 200)} {
		assert.NoError(t, registry.ValidateID(good), good)
	}
	for _, port := range []int{-1, 65536, 1 << 20} {
		_, err := reg.ForwardPort(ctx, "web", port)
		require.ErrorIs(t, err, registry.ErrInvalidPort, "ForwardPort(%d)", port)
		assert.Contains(t, err.Error(), fmt.Sprint(port))
		err = reg.Bind(ctx, "web", port)
		require.ErrorIs(t, err, registry.ErrInvalidPort, "Bind(%d)", port)
	}
	err := reg.Bind(ctx, "web", 0)
	require.ErrorIs(t, err, registry.ErrInvalidPort, "Bind needs a port")
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "nothing was assigned by rejected calls")
}

func TestDerivedPortIsTheSameOnEveryRegistry(t *testing.T) {
	a, err := mustOpen(t).ForwardPort(ctx, "some-service-name", 0)
	require.NoError(t, err)
	b, err := mustOpen(t).ForwardPort(ctx, "some-service-name", 0)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	c, err := mustOpen(t).ForwardPort(ctx, "another-service", 0)
	require.NoError(t, err)
	assert.NotEqual(t, a, c, "different names start at different ports")
}

func TestLookupAndListNeverCreateTheRegistry(t *testing.T) {
	reg := mustOpen(t)
	_, err := reg.Lookup(ctx, "web")
	require.ErrorIs(t, err, registry.ErrNotFound)
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = reg.Release(ctx, "web")
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = os.Stat(filepath.Dir(reg.Path()))
	assert.ErrorIs(t, err, os.ErrNotExist, "read-only calls leave no trace")
}

func TestListIsSorted(t *testing.T) {
	reg := mustOpen(t)
	for i, id := range []string{"zeta", "Alpha", "beta", "alpha"} {
		require.NoError(t, reg.Bind(ctx, id, 20000+i))
	}
	list, err := reg.List(ctx)
	require.NoError(t, err)
	var ids []string
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	assert.Equal(t, []string{"Alpha", "alpha", "beta", "zeta"}, ids)
	assert.Equal(t, 20000, list[3].Port)
}

func TestGarbageRegistryIsRefusedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	garbage := []byte("[ports]\nweb = 8000\n")
	require.NoError(t, os.WriteFile(path, garbage, 0o600))
	reg, err := registry.Open(path, registry.Options{})
	require.NoError(t, err)
	for name, call := range map[string]func() error{
		"ForwardPort": func() error { _, err := reg.ForwardPort(ctx, "web", 0); return err },
		"Lookup":      func() error { _, err := reg.Lookup(ctx, "web"); return err },
		"List":        func() error { _, err := reg.List(ctx); return err },
		"Release":     func() error { _, err := reg.Release(ctx, "web"); return err },
	} {
		err := call()
		require.ErrorIs(t, err, registry.ErrNotRegistry, name)
		assert.Contains(t, err.Error(), path, name)
		data, rerr := os.ReadFile(path)
		require.NoError(t, rerr)
		assert.Equal(t, garbage, data, "%s left the file as it was", name)
	}
}

func TestLockTimeoutNamesTheLockFile(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{LockTimeout: 30 * time.Millisecond})
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "warmup", 0) // create the file
	require.NoError(t, err)

	holder := heldLock(t, reg.LockPath())
	defer holder()
	_, err = reg.ForwardPort(ctx, "web", 0)
	require.ErrorIs(t, err, registry.ErrLocked)
	assert.Contains(t, err.Error(), reg.LockPath())

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = reg.Lookup(cctx, "warmup")
	require.ErrorIs(t, err, context.Canceled)
}

func TestConcurrentCallsInOneProcess(t *testing.T) {
	reg := mustOpen(t)
	const n = 16
	ports := make(chan int, 2*n)
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		go func() {
			p, err := reg.ForwardPort(ctx, "shared", 0)
			errs <- err
			ports <- p
		}()
		go func() {
			p, err := reg.ForwardPort(ctx, fmt.Sprintf("own-%d", i), 0)
			errs <- err
			ports <- -p
		}()
	}
	shared := map[int]bool{}
	own := map[int]bool{}
	for i := 0; i < 2*n; i++ {
		require.NoError(t, <-errs)
		if p := <-ports; p > 0 {
			shared[p] = true
		} else {
			own[-p] = true
		}
	}
	assert.Len(t, shared, 1)
	assert.Len(t, own, n)
	for p := range shared {
		assert.False(t, own[p])
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv(registry.EnvDB, "/tmp/x/registry.db")
	p, err := registry.DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, "/tmp/x/registry.db", p)
}

func ExampleRegistry_ForwardPort() {
	reg, done, err := exampleRegistry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()
	ctx := context.Background()
	if err := reg.Bind(ctx, "postgres", 15432); err != nil {
		fmt.Println(err)
		return
	}
	port, _ := reg.ForwardPort(ctx, "postgres", 9999) // known id: its port, whatever is suggested
	fmt.Println(port)

	_, err = reg.Lookup(ctx, "redis")
	fmt.Println(errors.Is(err, registry.ErrNotFound))
	// Output:
	// 15432
	// true
}
