package registry_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/store"
)

func TestLeaseRecordsItsOwner(t *testing.T) {
	reg := mustOpen(t)
	a, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	assert.Equal(t, registry.Lease, a.Kind)
	assert.Equal(t, fmt.Sprintf("lease:%d", a.Port), a.ID)
	assert.Equal(t, os.Getpid(), a.OwnerPID)
	assert.NotZero(t, a.OwnerStart)
	assert.True(t, a.OwnerAlive())
	assert.False(t, reg.IsEphemeral(a.Port))
	assert.GreaterOrEqual(t, a.Port, registry.MinPort)

	list, err := reg.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, a.Port, list[0].Port)
	assert.Equal(t, os.Getpid(), list[0].OwnerPID)
	assert.Contains(t, list[0].Command, "registry.test")
	wd, _ := os.Getwd()
	assert.Equal(t, wd, list[0].Dir)

	got, err := reg.ReleasePort(ctx, a.Port)
	require.NoError(t, err)
	assert.Equal(t, a.ID, got.ID)
	_, err = reg.ReleasePort(ctx, a.Port)
	assert.ErrorIs(t, err, registry.ErrNotFound)
}

func TestLeaseNIsDistinctAndRespectsRangeAndNear(t *testing.T) {
	reg := mustOpen(t)
	base := quietRun(t, reg, 8)
	ports := registry.PortList{{First: base, Last: base + 7}}
	as, err := reg.LeaseN(ctx, 5, registry.LeaseOptions{Ports: ports, Near: base})
	require.NoError(t, err)
	seen := map[int]bool{}
	for i, a := range as {
		assert.Equal(t, base+i, a.Port, "near: consecutive from base")
		seen[a.Port] = true
	}
	assert.Len(t, seen, 5)
	_, err = reg.LeaseN(ctx, 4, registry.LeaseOptions{Ports: ports})
	require.ErrorIs(t, err, registry.ErrNoPortAvailable, "only 3 left in the range: all or none")
	more, err := reg.LeaseN(ctx, 3, registry.LeaseOptions{Ports: ports})
	require.NoError(t, err)
	for _, a := range more {
		assert.False(t, seen[a.Port])
		assert.True(t, ports.Contains(a.Port))
	}
	_, err = reg.LeaseN(ctx, 0, registry.LeaseOptions{})
	assert.Error(t, err)
	_, err = reg.LeaseN(ctx, registry.MaxLeaseN+1, registry.LeaseOptions{})
	assert.Error(t, err)
}

func TestLeaseNeverTakesAStablePort(t *testing.T) {
	reg := mustOpen(t)
	base := quietRun(t, reg, 2)
	require.NoError(t, reg.Bind(ctx, "svc", base))
	a, err := reg.Lease(ctx, registry.LeaseOptions{Near: base, Ports: registry.PortList{{First: base, Last: base + 1}}})
	require.NoError(t, err)
	assert.Equal(t, base+1, a.Port)
}

func TestLeaseForMissingOwnerFails(t *testing.T) {
	reg := mustOpen(t)
	_, err := reg.Lease(ctx, registry.LeaseOptions{OwnerPID: 1 << 30})
	require.ErrorIs(t, err, registry.ErrNoOwner)
}

func TestLeaseOfAnExitedOwnerIsReclaimed(t *testing.T) {
	reg := mustOpen(t)
	h := startHolder(t, reg.Path(), 2)
	list, err := reg.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.True(t, list[0].OwnerAlive())

	// While the owner lives, its ports are never handed out again.
	a, err := reg.Lease(ctx, registry.LeaseOptions{Near: h.ports[0], Ports: registry.PortList{{First: h.ports[0], Last: h.ports[0]}}})
	require.ErrorIs(t, err, registry.ErrNoPortAvailable)
	gone, err := reg.Reclaim(ctx)
	require.NoError(t, err)
	assert.Empty(t, gone, "a live owner's leases are kept")

	h.exit(t)
	// The next allocation that meets the port takes it back...
	a, err = reg.Lease(ctx, registry.LeaseOptions{Near: h.ports[0], Ports: registry.PortList{{First: h.ports[0], Last: h.ports[0]}}})
	require.NoError(t, err)
	assert.Equal(t, h.ports[0], a.Port)
	assert.Equal(t, os.Getpid(), a.OwnerPID)
	// ...and Reclaim takes back the rest.
	gone, err = reg.Reclaim(ctx)
	require.NoError(t, err)
	require.Len(t, gone, 1)
	assert.Equal(t, h.ports[1], gone[0].Port)
	assert.False(t, gone[0].OwnerAlive())
}

func TestReusedPidDoesNotKeepALease(t *testing.T) {
	reg := mustOpen(t)
	_, err := reg.ForwardPort(ctx, "init", 0) // create the file
	require.NoError(t, err)
	me, err := procinfo.Lookup(os.Getpid())
	require.NoError(t, err)

	// A lease recorded for this pid but an earlier start time: this process
	// took the pid later. (A record one tick late still matches: see
	// procinfo's startMatches.)
	db, err := store.Open(reg.LeasePath(), store.Options{})
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Entry{ID: "lease:23456", Port: 23456, Kind: store.Lease, Created: now, Updated: now,
			OwnerPID: me.PID, OwnerStart: me.Start - 1})
	}))
	require.NoError(t, db.Close())

	gone, err := reg.Reclaim(ctx)
	require.NoError(t, err)
	require.Len(t, gone, 1)
	assert.Equal(t, 23456, gone[0].Port)
}

func TestManyProcessesLeasingGetDistinctPorts(t *testing.T) {
	reg := mustOpen(t)
	const procs, each = 16, 50
	jobs := make([][]string, procs)
	for i := range jobs {
		for j := 0; j < each; j++ {
			jobs[i] = append(jobs[i], fmt.Sprint(j))
		}
	}
	results := runHelpers(t, startHelpers(t, reg.Path(), 0, jobs, "PORTFOR_TEST_MODE=lease"))
	seen := map[int]int{}
	for i, rs := range results {
		require.Len(t, rs, each)
		for _, r := range rs {
			require.NotContains(t, seen, r.port, "port %d leased to helpers %d and %d", r.port, seen[r.port], i)
			seen[r.port] = i
			assert.False(t, reg.IsEphemeral(r.port), "port %d is ephemeral", r.port)
		}
	}
	require.Len(t, seen, procs*each)
	busy := 0
	for p := range seen {
		if ok, err := netprobe.CanBind(p, netprobe.TCP|netprobe.UDP); err != nil || !ok {
			busy++
		}
	}
	assert.Zero(t, busy, "every leased port is free on TCP and UDP")
	// The helpers have exited: their leases are all reclaimable.
	gone, err := reg.Reclaim(ctx)
	require.NoError(t, err)
	assert.Len(t, gone, procs*each)
}

func TestReleaseLeaseTakesNothingFromANewHolder(t *testing.T) {
	reg := mustOpen(t)
	base := quietRun(t, reg, 1)
	one := registry.PortList{{First: base, Last: base}}
	h := startHolder(t, reg.Path(), 0) // a process whose lease we make ourselves
	a, err := reg.Lease(ctx, registry.LeaseOptions{OwnerPID: h.cmd.Process.Pid, Ports: one})
	require.NoError(t, err)
	h.exit(t)
	b, err := reg.Lease(ctx, registry.LeaseOptions{Ports: one}) // takes the dead owner's port
	require.NoError(t, err)
	require.Equal(t, a.Port, b.Port)

	require.ErrorIs(t, reg.ReleaseLease(ctx, a), registry.ErrNotFound, "a's lease is gone; b's must stay")
	list, err := reg.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, os.Getpid(), list[0].OwnerPID)
	require.NoError(t, reg.ReleaseLease(ctx, b))
}

// The wall clock is used for the Created and Updated stamps only: leases
// made before and after the clock jumps a year either way are kept while
// their owner lives, whatever their stamps say, and a stable name assigned
// in between keeps its port. (libfaketime does not reach Go binaries,
// which read the clock through the vDSO, so the jump is Options.Now's.)
func TestClockJumpsDoNotEndLeases(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	path := filepath.Join(t.TempDir(), "registry.db")
	reg, err := registry.Open(path, registry.Options{Now: clock})
	require.NoError(t, err)
	year := 365 * 24 * time.Hour

	offset.Store(int64(-year))
	back, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	offset.Store(int64(year))
	ahead, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	web, err := reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	offset.Store(int64(-year))

	assert.NotEqual(t, back.Port, ahead.Port)
	assert.Less(t, back.Created, time.Now().Add(-year/2))
	assert.Greater(t, ahead.Created, time.Now().Add(year/2))
	gone, err := reg.Reclaim(ctx)
	require.NoError(t, err)
	assert.Empty(t, gone, "a live owner's leases stay, whatever their stamps")
	for _, a := range []registry.Assignment{back, ahead} {
		_, err := reg.Lease(ctx, registry.LeaseOptions{Ports: registry.PortList{{First: a.Port, Last: a.Port}}})
		require.ErrorIs(t, err, registry.ErrNoPortAvailable, "port %d is still leased", a.Port)
	}
	got, err := reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	assert.Equal(t, web, got)
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 3)
}
