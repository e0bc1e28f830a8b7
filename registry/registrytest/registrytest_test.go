package registrytest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/registry/registrytest"
)

// childEnv, set, makes this test binary a child of one of the tests here:
// its value names the role (see collisions_test.go, fallback_test.go).
const childEnv = "PORTFOR_REGISTRYTEST_CHILD"

// TestMain gives the tests here a registry of their own, in place of the
// user's, and no port server: the children get what their parent gives.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "registrytest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(registry.EnvDB, filepath.Join(dir, "registry.db"))
	os.Unsetenv("PORTSERVER_ADDRESS")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childTest returns the command that runs this test binary's test as a
// child in role, with no port server, env added to its environment and
// args to its flags. The child is killed when ctx ends.
func childTest(ctx context.Context, test, role string, env []string, args ...string) *exec.Cmd {
	args = append([]string{"-test.run=^" + test + "$", "-test.count=1", "-test.timeout=2m"}, args...)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), childEnv+"="+role, "PORTSERVER_ADDRESS="), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// leases returns the live leases of the registry at $PORTFOR_DB, by port.
func leases(t *testing.T) map[int]registry.Assignment {
	t.Helper()
	reg, err := registry.Open(os.Getenv(registry.EnvDB), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := reg.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]registry.Assignment{}
	for _, a := range all {
		if a.Kind == registry.Lease {
			out[a.Port] = a
		}
	}
	return out
}

func TestPortIsLeasedToTheTestProcessUntilTheTestEnds(t *testing.T) {
	var port int
	t.Run("test", func(t *testing.T) {
		port = registrytest.Port(t)
		a, ok := leases(t)[port]
		if !ok {
			t.Fatalf("port %d is not leased", port)
		}
		if a.OwnerPID != os.Getpid() {
			t.Errorf("port %d is leased to pid %d, want this test binary's, %d", port, a.OwnerPID, os.Getpid())
		}
		if ok, err := registry.CanBind(port, registry.TCP|registry.UDP); !ok || err != nil {
			t.Errorf("port %d cannot be bound: %v", port, err)
		}
	})
	if _, ok := leases(t)[port]; ok {
		t.Errorf("port %d is still leased after its test ended", port)
	}
}

func TestPortsAreDistinctAndAllReleased(t *testing.T) {
	var got []int
	t.Run("test", func(t *testing.T) {
		got = registrytest.Ports(t, registry.MaxLeaseN+6) // more than one LeaseN
		if len(got) != registry.MaxLeaseN+6 {
			t.Fatalf("got %d ports, want %d", len(got), registry.MaxLeaseN+6)
		}
		held := leases(t)
		for _, p := range got {
			if _, ok := held[p]; !ok {
				t.Errorf("port %d is not leased", p)
			}
		}
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(got) {
			t.Errorf("ports repeat: %v", got)
		}
	})
	held := leases(t)
	for _, p := range got {
		if _, ok := held[p]; ok {
			t.Errorf("port %d is still leased after its test ended", p)
		}
	}
}

func TestParallelTestsGetDistinctPorts(t *testing.T) {
	const tests = 40
	ports := make([]int, tests)
	t.Run("group", func(t *testing.T) {
		for i := range tests {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				ports[i] = registrytest.Port(t)
			})
		}
	})
	slices.Sort(ports)
	if len(slices.Compact(ports)) != tests {
		t.Errorf("parallel tests got the same port: %v", ports)
	}
}

func TestListenerIsBoundAndClosedAndReleasedAtCleanup(t *testing.T) {
	var addr string
	var port int
	t.Run("test", func(t *testing.T) {
		l := registrytest.Listener(t)
		addr = l.Addr().String()
		host, p, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("listening on %s, want 127.0.0.1", addr)
		}
		port, _ = strconv.Atoi(p)
		if _, ok := leases(t)[port]; !ok {
			t.Errorf("port %d is not leased", port)
		}
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := make([]byte, 5)
		if _, err := c.Read(b); err != nil || string(b) != "hello" {
			t.Fatalf("read %q, %v", b, err)
		}
	})
	if _, ok := leases(t)[port]; ok {
		t.Errorf("port %d is still leased after its test ended", port)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the listener was not closed at cleanup: %v", err)
	}
	l.Close()
}

func TestClosingTheListenerEarlyReleasesThePort(t *testing.T) {
	l := registrytest.Listener(t)
	_, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(p)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := leases(t)[port]; ok {
		t.Errorf("port %d is still leased after Close", port)
	}
	// A second Close (and at cleanup, a third) returns the first one's
	// result: the lease is not released twice.
	if err := l.Close(); err != nil {
		t.Errorf("a second Close: %v, want the first Close's result (nil)", err)
	}
}

func TestRegistryIsFreshAndTheTestsOwn(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Registry(t)
	if dir := filepath.Dir(reg.Path()); filepath.Dir(dir) != filepath.Dir(t.TempDir()) {
		t.Errorf("registry at %s, want it in the test's temporary directory", reg.Path())
	}
	if all, err := reg.List(ctx); err != nil || len(all) != 0 {
		t.Fatalf("a new registry lists %v, %v", all, err)
	}
	if err := reg.Bind(ctx, "web", 18080); err != nil {
		t.Fatal(err)
	}
	if _, err := registrytest.Registry(t).Lookup(ctx, "web"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("a second registry sees the first's names: %v", err)
	}
}

func TestWorksWithBenchmarks(t *testing.T) {
	var port int
	var listening bool
	testing.Benchmark(func(b *testing.B) {
		port = registrytest.Port(b)
		l := registrytest.Listener(b)
		listening = l.Addr() != nil
		b.SkipNow() // one run: the B's cleanups run now
	})
	if port == 0 || !listening {
		t.Fatalf("port %d, listening %v", port, listening)
	}
	if _, ok := leases(t)[port]; ok {
		t.Errorf("port %d is still leased after the benchmark", port)
	}
}

func FuzzWorksWithFuzzTargets(f *testing.F) {
	port := registrytest.Port(f)
	reg := registrytest.Registry(f)
	f.Add(1)
	f.Fuzz(func(t *testing.T, n int) {
		if port == 0 || reg == nil {
			t.Fatal("nothing from the helpers")
		}
	})
}
