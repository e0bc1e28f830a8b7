package registrytest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/portfor/portfor/internal/portserverclient"
	"github.com/portfor/portfor/registry"
)

// askTimeout bounds one request to a port server: one that accepts and
// never answers must not hang the test.
const askTimeout = 10 * time.Second

// served keeps, by server address, the ports port servers gave this
// process that tests handed back: the server holds them for this process
// until it exits, so later calls take them first (portpicker's
// return_port).
var served struct {
	sync.Mutex
	free map[string][]int
}

// servedPort is servedPorts for one port.
func servedPort(tb testing.TB) (int, bool) {
	tb.Helper()
	ports, ok := servedPorts(tb, 1)
	if !ok {
		return 0, false
	}
	return ports[0], true
}

// servedPorts gets n ports from the port server named by
// PORTSERVER_ADDRESS, kept for tb until it ends. ok is false when none is
// named, or it did not answer (said with tb.Log): the caller then leases
// from a registry.
func servedPorts(tb testing.TB, n int) (ports []int, ok bool) {
	tb.Helper()
	addr := os.Getenv(portserverclient.EnvAddress)
	if addr == "" {
		return nil, false
	}
	for len(ports) < n {
		p, ok := reuse(addr)
		if !ok {
			ctx, cancel := context.WithTimeout(tb.Context(), askTimeout)
			var err error
			p, err = portserverclient.Ask(ctx, addr, os.Getpid())
			cancel()
			if err != nil {
				giveBack(addr, ports)
				tb.Logf("registrytest: %v: leasing from the registry instead", err)
				return nil, false
			}
		}
		ports = append(ports, p)
	}
	tb.Cleanup(func() { giveBack(addr, ports) })
	return ports, true
}

// reuse takes a port handed back earlier that nothing holds now (a test
// may have left a server running on it).
func reuse(addr string) (int, bool) {
	served.Lock()
	defer served.Unlock()
	for free := served.free[addr]; len(free) > 0; free = served.free[addr] {
		p := free[len(free)-1]
		served.free[addr] = free[:len(free)-1]
		if ok, err := registry.CanBind(p, registry.TCP|registry.UDP); ok && err == nil {
			return p, true
		}
	}
	return 0, false
}

// giveBack keeps ports for later calls.
func giveBack(addr string, ports []int) {
	served.Lock()
	defer served.Unlock()
	if served.free == nil {
		served.free = make(map[string][]int)
	}
	served.free[addr] = append(served.free[addr], ports...)
}
