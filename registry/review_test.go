package registry

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/store"
)

func TestQueuedRequestOfADeadAskerIsDropped(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.ForwardPort(ctx, "init", 0)
	require.NoError(t, err)
	me, err := procinfo.Lookup(os.Getpid())
	require.NoError(t, err)
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	// A lease for a live owner, asked by a process that has since been killed.
	w, err := r.enqueue(request{Kind: store.Lease, Count: 1, Owner: me, Asker: procinfo.Identity{PID: gone.Process.Pid, Start: 1}})
	require.NoError(t, err)
	defer w.close()
	assert.Empty(t, r.pending())
	list, err := r.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1, "no lease made for a caller that is gone")
}

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
