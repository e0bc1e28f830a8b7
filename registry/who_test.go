package registry_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

// TestWhoFindsThisProcess listens here and wants Who to name this process,
// its program, directory and command line, and the name the port is
// registered under.
func TestWhoFindsThisProcess(t *testing.T) {
	reg := mustOpen(t)
	ctx := context.Background()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	hs, err := reg.Who(ctx, port)
	if runtime.GOOS != "linux" {
		require.ErrorIs(t, err, errors.ErrUnsupported)
		return
	}
	require.NoError(t, err)
	require.Len(t, hs, 1)
	h := hs[0]
	assert.Equal(t, "tcp", h.Proto)
	assert.Equal(t, "127.0.0.1", h.Local.Addr().String())
	assert.Equal(t, port, int(h.Local.Port()))
	assert.Equal(t, uint32(os.Geteuid()), h.UID)
	assert.False(t, h.Hidden)
	assert.Empty(t, h.Name)
	require.Len(t, h.Procs, 1)
	p := h.Procs[0]
	assert.Equal(t, os.Getpid(), p.PID)
	base := filepath.Base(os.Args[0])
	assert.Equal(t, base[:min(len(base), 15)], p.Program)
	wd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, wd, p.Dir)
	assert.True(t, strings.HasPrefix(p.Command, os.Args[0]), p.Command)

	// Registered: the name comes with it.
	l.Close()
	require.NoError(t, reg.Bind(ctx, "web", port))
	l, err = net.Listen("tcp4", l.Addr().String())
	require.NoError(t, err)
	defer l.Close()
	hs, err = reg.Who(ctx, port)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, "web", hs[0].Name)
	assert.Empty(t, hs[0].Scope)
}

func TestWhoFreePortAndBadPort(t *testing.T) {
	reg := mustOpen(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	hs, err := reg.Who(context.Background(), port)
	if runtime.GOOS != "linux" {
		require.ErrorIs(t, err, errors.ErrUnsupported)
	} else {
		require.NoError(t, err)
		assert.Empty(t, hs)
	}
	for _, bad := range []int{0, -1, 65536} {
		_, err := reg.Who(context.Background(), bad)
		assert.ErrorIs(t, err, registry.ErrInvalidPort, "%d", bad)
	}
}

// TestWhoSeveralPortsAndElsewhere asks for three ports at once: two held
// here, one free. The process runs in the directory the name tools was
// asked from, so holding api's port (asked from elsewhere) is flagged with
// tools' directory, and holding tools' own port is not.
func TestWhoSeveralPortsAndElsewhere(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sockets are looked up through Linux's sock_diag here")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "registry.db")
	wd, err := os.Getwd()
	require.NoError(t, err)
	here, err := registry.Open(db, registry.Options{})
	require.NoError(t, err)
	away, err := registry.Open(db, registry.Options{ScopeDir: t.TempDir()})
	require.NoError(t, err)
	lt := listenTCP(t)
	la := listenTCP(t)
	free := freePort(t)
	require.NoError(t, here.Bind(ctx, "tools", lt))
	require.NoError(t, away.Bind(ctx, "api", la))

	hs, err := here.Who(ctx, la, free, lt)
	require.NoError(t, err)
	require.Len(t, hs, 2)
	byName := map[string]registry.Holder{}
	for _, h := range hs {
		byName[h.Name] = h
	}
	require.Len(t, byName["tools"].Procs, 1)
	assert.Nil(t, byName["tools"].Procs[0].Elsewhere)
	require.Len(t, byName["api"].Procs, 1)
	assert.Equal(t, &registry.Home{Dir: wd, Names: []string{"tools"}}, byName["api"].Procs[0].Elsewhere)
	assert.Equal(t, "tools", byName["api"].Procs[0].Elsewhere.String())
	assert.Equal(t, min(la, lt), int(hs[0].Local.Port()), "sorted by port")

	// A registry that cannot be read leaves the names out, not the answer.
	bad := filepath.Join(t.TempDir(), "registry.db")
	require.NoError(t, os.WriteFile(bad, []byte("not a registry"), 0o600))
	broken, err := registry.Open(bad, registry.Options{})
	require.NoError(t, err)
	hs, err = broken.Who(ctx, la)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Empty(t, hs[0].Name)
	assert.Equal(t, os.Getpid(), hs[0].Procs[0].PID)

	hs, err = here.Who(ctx)
	assert.NoError(t, err)
	assert.Empty(t, hs)

	// WhoOf answers for the ports of a list, named from it, as Who does.
	list, err := here.List(ctx)
	require.NoError(t, err)
	want, err := here.Who(ctx, la, lt)
	require.NoError(t, err)
	got, err := here.WhoOf(ctx, list)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// Names come from the list alone: a name left out is not shown.
	got, err = here.WhoOf(ctx, list[:1])
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, list[0].ID, got[0].Name)
	got, err = here.WhoOf(ctx, nil)
	assert.NoError(t, err)
	assert.Empty(t, got)
}

func listenTCP(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}
