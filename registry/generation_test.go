package registry_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

// The ports a handle keeps between calls (Listen's known names, the lease
// chooser's stable ports) hold for one state of the registry file. A file
// replaced by another registry with as many commits, in place (cp over it:
// same inode) or by rm and a new file (ext4 hands the freed inode out
// again), is another state, however alike its header.

// bindablePorts returns n ports from from upward that a server could bind
// now, over TCP and UDP.
func bindablePorts(t *testing.T, from, n int) []int {
	t.Helper()
	var out []int
	for p := from; p < 32000 && len(out) < n; p++ {
		if ok, err := registry.CanBind(p, registry.TCP|registry.UDP); ok && err == nil {
			out = append(out, p)
		}
	}
	if len(out) < n {
		t.Skipf("fewer than %d bindable ports from %d", n, from)
	}
	return out
}

// otherRegistry makes another registry, in a directory of its own, in
// which name holds port, as many commits in as dst (one Bind on a new
// file), and copies it over dst in place: same inode, other content.
func otherRegistry(t *testing.T, dst, name string, port int) {
	t.Helper()
	other, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{})
	require.NoError(t, err)
	require.NoError(t, other.Bind(ctx, name, port))
	b, err := os.ReadFile(other.Path())
	require.NoError(t, err)
	before, err := os.Stat(dst)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
	after, err := os.Stat(dst)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "replaced in place")
}

func TestListenOfAKnownNameIsNotFooledByAReplacedFile(t *testing.T) {
	p := bindablePorts(t, 21000, 1)[0]
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "web", p))
	l, err := reg.Listen(ctx, "web", registry.ListenOptions{})
	require.NoError(t, err)
	require.Equal(t, p, tcpPort(l))
	require.NoError(t, l.Close())

	otherRegistry(t, reg.Path(), "api", p) // api holds p there; no web

	l, err = reg.Listen(ctx, "web", registry.ListenOptions{})
	require.NoError(t, err)
	defer l.Close()
	assert.NotEqual(t, p, tcpPort(l), "Listen bound api's port")
	assert.Equal(t, p, portOf(t, reg, "api"))
	assert.Equal(t, tcpPort(l), portOf(t, reg, "web"), "web is new in this file, and was given the port bound")
}

func TestLeaseIsNotFooledByAReplacedFile(t *testing.T) {
	ps := bindablePorts(t, 22000, 2)
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "web", ps[0]))
	// A lease keeps the registry file's ports in the handle.
	a, err := reg.Lease(ctx, registry.LeaseOptions{Ports: registry.PortList{{First: ps[0], Last: ps[1]}}})
	require.NoError(t, err)
	require.NoError(t, reg.ReleaseLease(ctx, a))

	otherRegistry(t, reg.Path(), "api", ps[1])

	a, err = reg.Lease(ctx, registry.LeaseOptions{Ports: registry.PortList{{First: ps[1], Last: ps[1]}}})
	require.ErrorIs(t, err, registry.ErrNoPortAvailable, "leased %d, which the registry file gives to api", a.Port)
}
