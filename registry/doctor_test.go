//go:build linux

package registry_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/portfor/portfor/registry"
)

func texts(rep registry.Report, s registry.Severity) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Severity == s {
			out = append(out, f.Text)
		}
	}
	return out
}

func TestDoctorFindsAndFixes(t *testing.T) {
	reg := mustOpen(t)
	rep, err := reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.Problems(), "no registry yet: nothing wrong")

	web, err := reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "api", 0)
	require.NoError(t, err)

	// A lease whose owner exits, and one whose port another process holds.
	dead := startHolder(t, reg.Path(), 1)
	dead.exit(t)
	live := startHolder(t, reg.Path(), 1)
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", itoa(live.ports[0])))
	require.NoError(t, err)
	defer ln.Close()

	// Index drift, wide permissions, a request a killed caller left, a
	// lease file of another boot, and a file portfor never makes.
	raw, err := bolt.Open(reg.Path(), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		k := []byte{byte(web >> 8), byte(web)}
		return tx.Bucket([]byte("ports")).Delete(k)
	}))
	require.NoError(t, raw.Close())
	require.NoError(t, os.Chmod(reg.Path(), 0o644))
	require.NoError(t, os.MkdirAll(reg.Path()+".pending", 0o700))
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	stale := fmt.Sprintf("%s.pending/q2-%016x-%d-1-0-00000001", reg.Path(), time.Now().UnixNano(), gone.Process.Pid)
	require.NoError(t, os.WriteFile(stale, []byte("portfor-request 2\nid x\nport 0\ndir \"\"\n"), 0o600))
	foreign := reg.Path() + ".pending/notes.txt"
	require.NoError(t, os.WriteFile(foreign, nil, 0o600))
	old := reg.Path() + ".leases-old-boot"
	require.NoError(t, os.WriteFile(old, nil, 0o600))

	rep, err = reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	problems := strings.Join(texts(rep, registry.SeverityProblem), "\n")
	for _, want := range []string{
		"is mode 0644: wider than 0600",
		`index drift: id "web" has port ` + itoa(web),
		"port " + itoa(live.ports[0]) + " is leased to pid " + itoa(live.cmd.Process.Pid),
		"but held by pid " + itoa(os.Getpid()),
	} {
		assert.Contains(t, problems, want)
	}
	assert.Equal(t, 3, rep.Problems(), problems)
	notes := strings.Join(texts(rep, registry.SeverityNote), "\n")
	for _, want := range []string{
		"1 leases of processes that are gone",
		"1 queued requests left by callers that are gone",
		"1 lease files of earlier boots",
		"notes.txt is not a file portfor makes (left alone)",
	} {
		assert.Contains(t, notes, want)
	}
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 4, "checking changed nothing")

	rep, err = reg.Doctor(ctx, registry.DoctorOptions{Fix: true})
	require.NoError(t, err)
	fixed := strings.Join(texts(rep, registry.SeverityFixed), "\n")
	for _, want := range []string{
		"was mode 0644: now 0600", `index drift: indexed port ` + itoa(web) + ` → "web"`,
		"freed 1 leases", "removed 1 queued requests", "removed 1 lease files",
	} {
		assert.Contains(t, fixed, want)
	}
	assert.Equal(t, 1, rep.Problems(), "a port held by someone else is for a person to sort out")

	rep, err = reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Problems(), strings.Join(texts(rep, registry.SeverityProblem), "\n"))
	assert.NotContains(t, strings.Join(texts(rep, registry.SeverityNote), "\n"), "gone")
	a, err := reg.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, web, a.Port, "repairs keep the assignments")
	fi, err := os.Stat(reg.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	for _, gone := range []string{stale, old} {
		_, err := os.Stat(gone)
		assert.ErrorIs(t, err, os.ErrNotExist, gone)
	}
	_, err = os.Stat(foreign)
	assert.NoError(t, err, "a file portfor does not make is never removed")
}

// A registry that crashed and killed callers left debris in is healthy:
// doctor notes the debris and exits 0 (Problems() == 0).
func TestDoctorCountsDebrisAsNotes(t *testing.T) {
	reg := mustOpen(t)
	_, err := reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	for range 3 {
		startHolder(t, reg.Path(), 2).exit(t)
	}
	rep, err := reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.Problems(), strings.Join(texts(rep, registry.SeverityProblem), "\n"))
	assert.Contains(t, texts(rep, registry.SeverityNote), "6 leases of processes that are gone (the next lease on their ports, or portfor gc, frees them)")
	assert.Less(t, rep.Locked, 5*time.Second)
}

// A path that is not a registry is reported, and --fix changes nothing in
// it: not even its mode.
func TestDoctorLeavesWhatIsNotARegistryAlone(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(reg.Path()), 0o700))
	require.NoError(t, os.WriteFile(reg.Path(), []byte("not a registry, mode 0644\n"), 0o644))
	rep, err := reg.Doctor(ctx, registry.DoctorOptions{Fix: true})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Problems(), "%v", rep.Findings)
	assert.Contains(t, texts(rep, registry.SeverityProblem)[0], "not a portfor registry")
	assert.Empty(t, texts(rep, registry.SeverityFixed))
	fi, err := os.Stat(reg.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "not chmodded")
}

func itoa(n int) string { return strconv.Itoa(n) }

// A name and a live lease on one port, each in its own file (the registry
// file restored from a copy older than the lease), is a problem: each
// holder will find the port taken. The name is the lasting claim, so
// --fix ends the lease.
func TestDoctorFindsANameAndALeaseOnOnePort(t *testing.T) {
	reg := mustOpen(t)
	_, err := reg.ForwardPort(ctx, "api", 0)
	require.NoError(t, err)
	a, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	kept, err := reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)

	// The copy restored: web holds the leased port there.
	older, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{})
	require.NoError(t, err)
	require.NoError(t, older.Bind(ctx, "web", a.Port))
	b, err := os.ReadFile(older.Path())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(reg.Path(), b, 0o600))

	rep, err := reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	problems := texts(rep, registry.SeverityProblem)
	require.Len(t, problems, 1, "%v", rep.Findings)
	assert.Contains(t, problems[0], fmt.Sprintf(`port %d is held by the name "web" in registry.db and leased to pid %d`, a.Port, os.Getpid()))
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 3, "checking changed nothing")

	rep, err = reg.Doctor(ctx, registry.DoctorOptions{Fix: true})
	require.NoError(t, err)
	assert.Zero(t, rep.Problems(), "%v", rep.Findings)
	fixed := texts(rep, registry.SeverityFixed)
	require.Len(t, fixed, 1, "%v", rep.Findings)
	assert.Contains(t, fixed[0], fmt.Sprintf("ended the lease on port %d of pid %d", a.Port, os.Getpid()))
	assert.Contains(t, fixed[0], `the name "web" holds the port in registry.db`)

	rep, err = reg.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.Problems(), "%v", rep.Findings)
	list, err = reg.List(ctx)
	require.NoError(t, err)
	var got []string
	for _, e := range list {
		got = append(got, fmt.Sprintf("%s %d", e.Kind, e.Port))
	}
	assert.ElementsMatch(t, []string{fmt.Sprintf("%s %d", registry.Stable, a.Port), fmt.Sprintf("%s %d", registry.Lease, kept.Port)}, got,
		"the name stays, and the lease on another port")
	assert.ErrorIs(t, reg.ReleaseLease(ctx, a), registry.ErrNotFound, "the lease is gone")
	require.NoError(t, reg.ReleaseLease(ctx, kept))
}
