//go:build linux

package registry_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

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
	rep, err := reg.Doctor(ctx, false)
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

	// Index drift, wide permissions, a stale request, a lease file of another boot.
	raw, err := bolt.Open(reg.Path(), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		k := []byte{byte(web >> 8), byte(web)}
		return tx.Bucket([]byte("ports")).Delete(k)
	}))
	require.NoError(t, raw.Close())
	require.NoError(t, os.Chmod(reg.Path(), 0o644))
	require.NoError(t, os.MkdirAll(reg.Path()+".pending", 0o700))
	stale := reg.Path() + ".pending/req-123"
	require.NoError(t, os.WriteFile(stale, []byte("portfor-request 1\nkind stable\nid x\nport 0\nowner 999999 1\nasker 999999 1\ndir \"\"\ncmd \"\"\n"), 0o600))
	old := reg.Path() + ".leases-old-boot"
	require.NoError(t, os.WriteFile(old, nil, 0o600))

	rep, err = reg.Doctor(ctx, false)
	require.NoError(t, err)
	problems := strings.Join(texts(rep, registry.Problem), "\n")
	for _, want := range []string{
		"is mode 0644: wider than 0600",
		"index drift: indexed port " + itoa(web) + ` → "web"`,
		"leased to pid " + itoa(dead.cmd.Process.Pid) + ", which is gone",
		"port " + itoa(live.ports[0]) + " is leased to pid " + itoa(live.cmd.Process.Pid),
		"but held by pid " + itoa(os.Getpid()),
		"req-123 was queued by pid 999999, which is gone",
		"registry.db.leases-old-boot is a lease file of an earlier boot",
	} {
		assert.Contains(t, problems, want)
	}
	assert.Equal(t, 6, rep.Problems(), problems)
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 4, "checking changed nothing")

	rep, err = reg.Doctor(ctx, true)
	require.NoError(t, err)
	assert.Len(t, texts(rep, registry.Fixed), 5)
	assert.Equal(t, 1, rep.Problems(), "a port held by someone else is for a person to sort out")

	rep, err = reg.Doctor(ctx, false)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Problems(), strings.Join(texts(rep, registry.Problem), "\n"))
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
}

func itoa(n int) string { return strconv.Itoa(n) }
