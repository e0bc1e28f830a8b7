package registry_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/registry"
)

// heldIn starts `sleep` in dir holding a TCP socket listening on a port
// of 127.0.0.1, which this process no longer holds, and returns the port
// and the sleeper's pid: a server running in dir, as Who sees it.
func heldIn(t *testing.T, dir string) (port, pid int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	cmd := exec.Command("sleep", "600")
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{f}
	require.NoError(t, cmd.Start()) // returns once sleep runs, in dir, with the socket
	f.Close()
	ln.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return ln.Addr().(*net.TCPAddr).Port, cmd.Process.Pid
}

// whoWithin runs Who, failing the test if it has not answered within the
// deadline (the call is then left blocked; the test binary's exit ends it).
func whoWithin(t *testing.T, reg *registry.Registry, ports ...int) []registry.Holder {
	t.Helper()
	type answer struct {
		hs  []registry.Holder
		err error
	}
	done := make(chan answer, 1)
	go func() {
		hs, err := reg.Who(context.Background(), ports...)
		done <- answer{hs, err}
	}()
	select {
	case a := <-done:
		require.NoError(t, a.err)
		return a.hs
	case <-time.After(10 * time.Second):
		t.Fatal("Who did not answer within 10 s")
		return nil
	}
}

// A worktree scope's names are looked up in their admin directory's gitdir
// file, a path any member of a shared registry can write as a name's Dir.
// A FIFO there (or a link to one, or to a terminal) once made Who, and so
// list and doctor, wait for ever in open(2); it is skipped now, and the
// name's home is its Dir.
func TestWhoSkipsAGitdirThatIsNotAFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sockets are looked up through Linux's sock_diag here")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "registry.db")
	base := t.TempDir()
	fifoAdmin := filepath.Join(base, "fifo")
	linkAdmin := filepath.Join(base, "link")
	require.NoError(t, os.Mkdir(fifoAdmin, 0o755))
	require.NoError(t, os.Mkdir(linkAdmin, 0o755))
	fifo := filepath.Join(fifoAdmin, "gitdir")
	require.NoError(t, unix.Mkfifo(fifo, 0o644))
	require.NoError(t, os.Symlink(fifo, filepath.Join(linkAdmin, "gitdir")))

	port, pid := heldIn(t, t.TempDir())
	for i, admin := range []string{fifoAdmin, linkAdmin} {
		reg, err := registry.Open(db, registry.Options{Scope: []string{"evil-a", "evil-b"}[i], ScopeDir: admin})
		require.NoError(t, err)
		require.NoError(t, reg.Bind(ctx, "web", []int{port, freePort(t)}[i]))
	}
	reg, err := registry.Open(db, registry.Options{})
	require.NoError(t, err)
	hs := whoWithin(t, reg, port)
	require.Len(t, hs, 1)
	assert.Equal(t, "web", hs[0].Name)
	require.Len(t, hs[0].Procs, 1)
	assert.Equal(t, pid, hs[0].Procs[0].PID)
}
