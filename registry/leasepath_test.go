package registry

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInvalidLeaseRangeIsAnErrorAndLeavesNothingLocked(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.Lease(ctx, LeaseOptions{Ports: PortList{{First: 9000, Last: 8000}}})
	require.ErrorIs(t, err, ErrInvalidPort)
	_, err = r.Lease(ctx, LeaseOptions{Ports: PortList{{First: 0, Last: 70000}}})
	require.ErrorIs(t, err, ErrInvalidPort)
	_, err = r.ForwardPort(ctx, "still-works", 0)
	require.NoError(t, err)
}

func TestGlobCharactersInThePathTouchNoOtherRegistry(t *testing.T) {
	base := t.TempDir()
	ctx := context.Background()
	plain, err := Open(filepath.Join(base, "p1", "registry.db"), Options{})
	require.NoError(t, err)
	a, err := plain.Lease(ctx, LeaseOptions{})
	require.NoError(t, err)

	odd, err := Open(filepath.Join(base, "p[1]", "registry.db"), Options{})
	require.NoError(t, err)
	_, err = odd.Lease(ctx, LeaseOptions{})
	require.NoError(t, err)

	list, err := plain.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1, "p1's lease file is still there")
	assert.Equal(t, a.Port, list[0].Port)
}
