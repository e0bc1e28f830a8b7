package registrytest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portfor/portfor/internal/portserverclient"
	"github.com/portfor/portfor/registry"
)

// askTimeout bounds one request to a port server: one that accepts and
// never answers must not hang the test.
const askTimeout = 10 * time.Second

// asks bounds how many ports servedPorts asks a port server for in a row
// to get one that can be bound: a server may hand out a port in use (one
// it thinks free, a stale one, or another user's process's), but one that
// hands out nothing else is broken, and the test fails saying so.
const asks = 5

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
			var busy []int
			var err error
			// The ports in use are not kept for later calls: a server that
			// hands one out twice would have it handed out twice here.
			p, busy, err = askBindable(tb, addr)
			if err != nil {
				giveBack(addr, ports)
				tb.Logf("registrytest: %v: leasing from the registry instead", err)
				return nil, false
			}
			if p == 0 {
				giveBack(addr, ports)
				tb.Fatalf("registrytest: port server %s handed out only ports in use, %d times in a row (%s): "+
					"is it handing out stale ports? (unset %s to lease from the registry instead)",
					addr, len(busy), portList(busy), portserverclient.EnvAddress)
			}
		}
		ports = append(ports, p)
	}
	tb.Cleanup(func() { giveBack(addr, ports) })
	return ports, true
}

// askBindable asks the port server at addr for a port that can be bound
// now, on TCP and UDP (registry.CanBind), up to asks times. It returns the
// port, or 0 when every port the server answered was in use, and those
// ports; err when the server did not answer.
func askBindable(tb testing.TB, addr string) (port int, busy []int, err error) {
	for range asks {
		ctx, cancel := context.WithTimeout(tb.Context(), askTimeout)
		p, err := portserverclient.Ask(ctx, addr, os.Getpid())
		cancel()
		if err != nil {
			return 0, busy, err
		}
		ok, err := registry.CanBind(p, registry.TCP|registry.UDP)
		if err != nil {
			return 0, busy, fmt.Errorf("port server %s: port %d: %w", addr, p, err)
		}
		if ok {
			return p, busy, nil
		}
		busy = append(busy, p)
	}
	return 0, busy, nil
}

// portList lists ports for a message: "8000, 8001, 8000".
func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
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
