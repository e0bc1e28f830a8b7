//go:build linux

package portserver_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/registry/registrytest"
)

// With PORTSERVER_ADDRESS naming a `portfor serve`, registrytest's ports
// are the server's: leases in its registry, from its pool, for the test
// binary's process, which it keeps until that process exits (the protocol
// cannot give a port back).
func TestRegistrytestAsksPortforServe(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	t.Setenv("PORTSERVER_ADDRESS", s.addr)
	var ports []int
	t.Run("test", func(t *testing.T) {
		ports = registrytest.Ports(t, 3)
	})
	all, err := s.reg.List(context.Background())
	require.NoError(t, err)
	leased := map[int]registry.Assignment{}
	for _, a := range all {
		leased[a.Port] = a
	}
	for _, p := range ports {
		require.True(t, s.pool.Contains(p), "port %d is outside the pool", p)
		require.Contains(t, leased, p, "port %d is not leased in the server's registry", p)
		require.Equal(t, os.Getpid(), leased[p].OwnerPID, "port %d", p)
	}
}
