package registry_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/iana"
	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/registry"
)

const children = 32

func TestManyProcessesForwardingOneNewIDGetOnePort(t *testing.T) {
	reg := mustOpen(t)
	jobs := make([][]string, children)
	for i := range jobs {
		jobs[i] = []string{"shared-service"}
	}
	results := runHelpers(t, startHelpers(t, reg.Path(), 0, jobs))
	seen := map[int]int{}
	for _, rs := range results {
		require.Len(t, rs, 1)
		seen[rs[0].port]++
	}
	require.Len(t, seen, 1, "all %d processes must print one port: %v", children, seen)
	a, err := reg.Lookup(ctx, "shared-service")
	require.NoError(t, err)
	assert.Equal(t, children, seen[a.Port])
}

func TestManyProcessesForwardingDistinctIDsGetDistinctPorts(t *testing.T) {
	reg := mustOpen(t)

	// Hold a run of ports with listeners on several addresses; every child
	// suggests the first of them, so the search must step over all of them.
	var held []net.Listener
	addrs := []string{"127.0.0.1", "0.0.0.0"}
	if hasIPv6() {
		addrs = append(addrs, "::1", "::")
	}
	base := quietRun(t, reg, 8)
	for i := 0; i < 8; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[i%len(addrs)], fmt.Sprint(base+i)))
		require.NoError(t, err)
		held = append(held, l)
	}
	heldPorts := map[int]bool{}
	for _, l := range held {
		defer l.Close()
		heldPorts[l.Addr().(*net.TCPAddr).Port] = true
	}

	jobs := make([][]string, children)
	for i := range jobs {
		jobs[i] = []string{fmt.Sprintf("svc-%02d", i)}
	}
	results := runHelpers(t, startHelpers(t, reg.Path(), base, jobs))
	got := map[int]string{}
	for i, rs := range results {
		require.Len(t, rs, 1)
		p := rs[0].port
		id := jobs[i][0]
		require.NotContains(t, got, p, "port %d given to both %s and %s", p, got[p], id)
		got[p] = id
		assert.False(t, heldPorts[p], "%s got port %d, which a listener holds", id, p)
		assert.False(t, reg.IsEphemeral(p), "%s got ephemeral port %d", id, p)
	}
	assert.Len(t, got, children)

	list, err := reg.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, children)
	for _, a := range list {
		assert.Equal(t, a.ID, got[a.Port], "the registry agrees with what %s printed", a.ID)
	}
}

// quietRun returns the first port of n consecutive ports that portfor would
// pick on its own (not ephemeral, reserved or IANA-registered) and that are
// free now, so that holding them with listeners makes the search probe them.
func quietRun(t *testing.T, reg *registry.Registry, n int) int {
	t.Helper()
	reserved, _ := portrange.Reserved()
	for base := 20000; base < 30000; base++ {
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = !reg.IsEphemeral(p) && !iana.Registered(p) && !reserved.Contains(p)
			if ok {
				free, err := netprobe.CanBind(p, netprobe.TCP)
				ok = err == nil && free
			}
		}
		if ok {
			return base
		}
	}
	t.Skip("no run of free, unregistered ports between 20000 and 30000")
	return 0
}
