// Package registrytest gives tests ports that no other test gets at the
// same time, in the manner of net/http/httptest and testing/fstest.
//
//	func TestServer(t *testing.T) {
//		t.Parallel()
//		l := registrytest.Listener(t) // bound on 127.0.0.1; closed when the test ends
//		go http.Serve(l, handler)
//		resp, err := http.Get("http://" + l.Addr().String() + "/health")
//		...
//	}
//
//	port := registrytest.Port(t)      // for a server that binds the port itself
//	ports := registrytest.Ports(t, 3) // three distinct ports
//	reg := registrytest.Registry(t)   // an empty registry of the test's own, for code that uses portfor
//
// Each function takes a [testing.TB]: a *testing.T, *testing.B or
// *testing.F. What it hands out is given back when the test ends (at
// tb.Cleanup); it fails the test (tb.Fatal) only when it has nothing to
// hand out.
//
// # Where the ports come from
//
// A port is a lease (see [registry.Registry.Lease]) in the user's registry:
// $PORTFOR_DB, else [registry.DefaultPath], read at the first call. The
// registry is opened once per test binary and shared by every process that uses portfor, so the test
// binaries that `go test ./...` runs at once (one per package) never get
// the same port, and neither do `portfor pick` and the servers `portfor`
// started. The test binary's process owns the leases: if it is killed
// before its cleanups run, portfor takes them back as for any process that
// is gone.
//
// Where the user's registry cannot be opened or written (a read-only HOME in
// a sandbox), leases come from the registry in the directory "portfor-UID"
// of [os.TempDir], shared by every process of the user that falls back the
// same way. That directory must be the user's own and writable by no one
// else; it is made so when missing. A test that gets a port from there says
// so once with tb.Log and is not failed for it; only when that registry
// cannot be used either does the test fail, with both reasons.
//
// # Port servers
//
// When PORTSERVER_ADDRESS is set, as CI set-ups that run a port server for
// their (often Bazel) tests set it, Port, Ports and Listener ask the port
// server there, with portpicker's protocol (the test binary's pid out, a
// port back): `portfor serve` or Python's portserver. The protocol cannot give a port back; the server keeps the
// port for the test binary's process until that process exits, and takes
// it back after (`portfor serve` when its pool comes round to the port, or
// on `portfor gc`; portserver likewise). So a port handed back at cleanup
// is kept for the later calls of the same test binary, as portpicker's
// return_port does, and handed out again while nothing holds it. A port
// the server hands out is checked as a lease's is (free on TCP and UDP,
// [registry.CanBind]): one in use (stale, or another program's) is passed
// over and the server asked again, a few times; a server that hands out
// nothing but ports in use fails the test, saying so. When the server
// does not answer, the test says so with tb.Log and gets a lease from the
// registry instead.
package registrytest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/portfor/portfor/registry"
)

// Port returns a port that no other test, on this machine, gets until tb
// ends: free now on TCP and UDP, IPv4 and IPv6, outside the ephemeral
// range. It is given back at tb.Cleanup.
func Port(tb testing.TB) int {
	tb.Helper()
	return Ports(tb, 1)[0]
}

// Ports returns n distinct ports, as [Port] does.
func Ports(tb testing.TB, n int) []int {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("registrytest.Ports(%d): want at least 1 port", n)
	}
	if ports, ok := servedPorts(tb, n); ok {
		return ports
	}
	out := make([]int, 0, n)
	for len(out) < n {
		k := min(n-len(out), registry.MaxLeaseN)
		var leases []registry.Assignment
		reg := withRegistry(tb, func(reg *registry.Registry) (err error) {
			leases, err = leaseBatched(reg, k)
			return err
		})
		tb.Cleanup(func() {
			for _, a := range leases {
				release(tb, reg, a)
			}
		})
		for _, a := range leases {
			out = append(out, a.Port)
		}
	}
	return out
}

// release ends lease a. One that is already gone (someone released the
// port by hand) is no concern of the test's; any other failure leaves the
// lease until the test binary exits, which is worth a line but no failure.
func release(tb testing.TB, reg *registry.Registry, a registry.Assignment) {
	turn.Lock()
	err := reg.ReleaseLease(context.Background(), a)
	turn.Unlock()
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		tb.Logf("registrytest: port %d stays leased until this test binary exits: %v", a.Port, err)
	}
}

// binds is how often Listener tries a new port when the one it got cannot
// be bound: another program, one that does not use portfor, took it first.
const binds = 3

// Listener returns a TCP listener on 127.0.0.1 and a port leased as [Port]
// leases it. It is closed, and the port given back, at tb.Cleanup; closing
// it earlier gives the port back then.
func Listener(tb testing.TB) net.Listener {
	tb.Helper()
	var last error
	for range binds {
		var l net.Listener
		var err error
		if port, ok := servedPort(tb); ok {
			l, err = listenLocal(port)
		} else {
			withRegistry(tb, func(reg *registry.Registry) error {
				turn.Lock()
				l, err = listenLeased(tb.Context(), reg)
				turn.Unlock()
				if errors.As(err, new(*net.OpError)) {
					return nil // the bind failed, not the registry: try another port
				}
				return err
			})
		}
		if err == nil {
			tb.Cleanup(func() { l.Close() })
			return l
		}
		last = err
	}
	tb.Fatalf("registrytest: no port could be bound in %d tries: %v", binds, last)
	return nil
}

// listenLocal binds port on 127.0.0.1.
func listenLocal(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// Registry returns a new, empty registry in tb.TempDir(), for testing code
// that uses portfor itself. It shares nothing with the user's registry:
// the names, ports and leases made in it are the test's alone.
func Registry(tb testing.TB) *registry.Registry {
	tb.Helper()
	reg, err := registry.Open(filepath.Join(tb.TempDir(), "registry.db"), registry.Options{})
	if err != nil {
		tb.Fatalf("registrytest: %v", err)
	}
	return reg
}
