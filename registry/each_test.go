package registry_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

func TestForwardEach(t *testing.T) {
	reg := mustOpen(t)
	known, err := reg.ForwardPort(ctx, "known", 0)
	require.NoError(t, err)
	free := freePort(t)
	res, errs := reg.ForwardEach(ctx, []registry.ForwardRequest{
		{ID: "known", Suggested: free},
		{ID: "new", Suggested: free},
		{ID: "bad id"},
		{ID: "new", Suggested: free + 1},
		{ID: "auto"},
		{ID: "badport", Suggested: 70000},
	})
	require.NoError(t, errs[0])
	assert.Equal(t, registry.ForwardResult{Port: known, Known: true}, res[0], "a known id keeps its port")
	require.NoError(t, errs[1])
	assert.Equal(t, registry.ForwardResult{Port: free}, res[1], "a new id gets its free suggestion")
	assert.ErrorIs(t, errs[2], registry.ErrInvalidID)
	require.NoError(t, errs[3])
	assert.Equal(t, free, res[3].Port, "an id asked twice gets one port")
	require.NoError(t, errs[4])
	assert.NotContains(t, []int{0, known, free}, res[4].Port)
	assert.ErrorIs(t, errs[5], registry.ErrInvalidPort)
	_, err = reg.Lookup(ctx, "badport")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	for _, id := range []string{"new", "auto"} {
		a, err := reg.Lookup(ctx, id)
		require.NoError(t, err)
		assert.Contains(t, []int{res[1].Port, res[4].Port}, a.Port)
	}
}

func TestLookupEachAndReleaseEach(t *testing.T) {
	reg := mustOpen(t)
	_, errs := reg.LookupEach(ctx, []string{"a"})
	assert.ErrorIs(t, errs[0], registry.ErrNotFound, "no registry yet")
	_, errs = reg.ReleaseEach(ctx, []string{"a"})
	assert.ErrorIs(t, errs[0], registry.ErrNotFound, "no registry yet")

	require.NoError(t, reg.Bind(ctx, "a", 18001))
	require.NoError(t, reg.Bind(ctx, "b", 18002))
	as, errs := reg.LookupEach(ctx, []string{"b", "nosuch", "a", "-x"})
	assert.Equal(t, 18002, as[0].Port)
	assert.ErrorIs(t, errs[1], registry.ErrNotFound)
	assert.Equal(t, 18001, as[2].Port)
	assert.ErrorIs(t, errs[3], registry.ErrInvalidID)
	assert.NoError(t, errs[0])
	assert.NoError(t, errs[2])

	as, errs = reg.ReleaseEach(ctx, []string{"a", "nosuch", "a", "b"})
	assert.Equal(t, []error{nil, errs[1], nil, nil}, errs)
	assert.ErrorIs(t, errs[1], registry.ErrNotFound)
	assert.Equal(t, []int{18001, 0, 18001, 18002}, []int{as[0].Port, as[1].Port, as[2].Port, as[3].Port})
	all, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, all)
}

func TestMove(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "web", 18010))
	require.NoError(t, reg.Bind(ctx, "api", 18011))
	old, err := reg.Move(ctx, "web", 18012)
	require.NoError(t, err)
	assert.Equal(t, 18010, old)
	a, err := reg.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, 18012, a.Port)
	assert.True(t, a.Updated.After(a.Created) || a.Updated.Equal(a.Created))

	// The old port is free for others; the new one is not.
	require.NoError(t, reg.Bind(ctx, "db", 18010))
	_, err = reg.Move(ctx, "api", 18012)
	require.ErrorIs(t, err, registry.ErrPortTaken)
	assert.Contains(t, err.Error(), `already assigned to "web"`)
	_, err = reg.Move(ctx, "nosuch", 18020)
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = reg.Move(ctx, "web", 0)
	require.ErrorIs(t, err, registry.ErrInvalidPort)

	// A leased port is taken too, and a lease is not moved.
	l, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	_, err = reg.Move(ctx, "api", l.Port)
	require.ErrorIs(t, err, registry.ErrPortTaken)
	_, err = reg.Move(ctx, l.ID, 18030)
	require.Error(t, err)

	old, err = reg.Move(ctx, "web", 18012)
	require.NoError(t, err)
	assert.Equal(t, 18012, old, "moving to the port it holds changes nothing")
	rep, err := reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.Problems(), "indexes agree after moves: %v", rep.Findings)
}

// TestForwardEachAcrossProcesses has 8 processes ask for overlapping sets
// of names at once, half of them one name at a time: every name gets one
// port, the same in every process, and no port goes to two names.
func TestForwardEachAcrossProcesses(t *testing.T) {
	reg := mustOpen(t)
	names := make([]string, 24)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%d", i)
	}
	var jobs [][]string
	for range 8 {
		perm := rand.Perm(len(names))[:12]
		var ids []string
		for _, i := range perm {
			ids = append(ids, names[i])
		}
		jobs = append(jobs, ids)
	}
	each := startHelpers(t, reg.Path(), 0, jobs[:4], "PORTFOR_TEST_MODE=each")
	single := startHelpers(t, reg.Path(), 0, jobs[4:])
	results := runHelpers(t, append(each, single...))
	byName := map[string]int{}
	for h, rs := range results {
		require.Len(t, rs, len(jobs[h]))
		for i, r := range rs {
			id := jobs[h][i]
			if p, ok := byName[id]; ok {
				assert.Equal(t, p, r.port, "%s has one port in every process", id)
			}
			byName[id] = r.port
		}
	}
	owner := map[int]string{}
	for id, p := range byName {
		if o, ok := owner[p]; ok {
			t.Errorf("port %d went to %s and %s", p, o, id)
		}
		owner[p] = id
		a, err := reg.Lookup(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(p), strconv.Itoa(a.Port))
	}
}
