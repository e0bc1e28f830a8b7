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
