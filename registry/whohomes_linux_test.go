package registry_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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

// tcpOnly keeps the TCP sockets of hs: the tests' servers listen on TCP
// ports the kernel chose, and another program may hold the UDP port of
// the same number meanwhile.
func tcpOnly(hs []registry.Holder) []registry.Holder {
	var out []registry.Holder
	for _, h := range hs {
		if h.Proto == "tcp" {
			out = append(out, h)
		}
	}
	return out
}

// whoWithin runs Who, failing the test if it has not answered within the
// deadline (the call is then left blocked; the test binary's exit ends it),
// and returns its TCP sockets.
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
		return tcpOnly(a.hs)
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

// realTempDir is t.TempDir with its links resolved, as /proc shows a
// process's working directory.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	return d
}

// Git 2.48's worktree.useRelativePaths writes the admin directory's gitdir
// file relative to that directory ("../../../.worktrees/feat/.git"). Such
// a worktree nested in the main one's directory was taken for the main
// one's: its own server on its own port was flagged as running in the
// directory of the main worktree's names.
func TestWhoReadsARelativeGitdir(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sockets are looked up through Linux's sock_diag here")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "registry.db")
	app := filepath.Join(realTempDir(t), "app")
	admin := filepath.Join(app, ".git", "worktrees", "feat")
	wt := filepath.Join(app, ".worktrees", "feat")
	require.NoError(t, os.MkdirAll(admin, 0o755))
	require.NoError(t, os.MkdirAll(wt, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(admin, "gitdir"), []byte("../../../.worktrees/feat/.git\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: ../../.git/worktrees/feat\n"), 0o644))

	own, _ := heldIn(t, wt)
	mains, _ := heldIn(t, wt)
	main, err := registry.Open(db, registry.Options{ScopeDir: app})
	require.NoError(t, err)
	feat, err := registry.Open(db, registry.Options{Scope: "feat-0a1b2c3d", ScopeDir: admin})
	require.NoError(t, err)
	require.NoError(t, main.Bind(ctx, "web", mains))
	require.NoError(t, feat.Bind(ctx, "web", own))

	hs, err := main.Who(ctx, own, mains)
	require.NoError(t, err)
	hs = tcpOnly(hs)
	require.Len(t, hs, 2)
	for _, h := range hs {
		require.Len(t, h.Procs, 1)
		if int(h.Local.Port()) == own {
			assert.Nil(t, h.Procs[0].Elsewhere, "the worktree's server on its own port")
		} else {
			assert.Equal(t, &registry.Home{Dir: wt, Scope: "feat-0a1b2c3d", Names: []string{"web"}}, h.Procs[0].Elsewhere,
				"the worktree's server on the main worktree's port")
		}
	}
}

// A name's Dir is the directory it was asked from as os.Getwd gave it,
// which may go through a symbolic link ($PWD); /proc gives a process's
// working directory with links resolved. A server running in its own
// name's directory, reached through a link, was flagged as running in the
// directory of a name asked from the real path above it.
func TestWhoResolvesLinksInHomes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sockets are looked up through Linux's sock_diag here")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "registry.db")
	base := realTempDir(t)
	real := filepath.Join(base, "real")
	require.NoError(t, os.MkdirAll(filepath.Join(real, "app"), 0o755))
	link := filepath.Join(base, "link")
	require.NoError(t, os.Symlink(real, link))

	webPort, _ := heldIn(t, filepath.Join(real, "app"))
	toolsPort, _ := heldIn(t, filepath.Join(real, "app"))
	tools, err := registry.Open(db, registry.Options{ScopeDir: real})
	require.NoError(t, err)
	web, err := registry.Open(db, registry.Options{ScopeDir: filepath.Join(link, "app")})
	require.NoError(t, err)
	require.NoError(t, tools.Bind(ctx, "tools", toolsPort))
	require.NoError(t, web.Bind(ctx, "web", webPort))

	hs, err := web.Who(ctx, webPort, toolsPort)
	require.NoError(t, err)
	hs = tcpOnly(hs)
	require.Len(t, hs, 2)
	for _, h := range hs {
		require.Len(t, h.Procs, 1)
		if h.Name == "web" {
			assert.Nil(t, h.Procs[0].Elsewhere, "web's server in web's directory")
		} else {
			require.NotNil(t, h.Procs[0].Elsewhere, "web's server on tools' port")
			assert.Equal(t, []string{"web"}, h.Procs[0].Elsewhere.Names)
		}
	}
}

// A process in another mount namespace has a working directory of that
// namespace, and /proc gives its path, which here may name another
// directory: whoever may make a user namespace can mount over another
// name's home in a namespace of their own and start a server there. It
// was flagged as running in that name's directory, the one server of the
// worktree a person would then stop.
func TestWhoLeavesOtherMountNamespacesAlone(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mount namespaces are Linux's")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting in a new mount namespace needs root here")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "registry.db")
	home := realTempDir(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs portfor-test "$0" && cd "$0" && exec sleep 600`, home)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	f.Close()
	ln.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	mine, err := os.Readlink("/proc/self/ns/mnt")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		comm, _ := os.ReadFile(proc + "/comm")
		cwd, _ := os.Readlink(proc + "/cwd")
		ns, _ := os.Readlink(proc + "/ns/mnt")
		return string(comm) == "sleep\n" && cwd == home && ns != "" && ns != mine
	}, 10*time.Second, 5*time.Millisecond, "sleep running in its own tmpfs over %s", home)

	web, err := registry.Open(db, registry.Options{ScopeDir: t.TempDir()})
	require.NoError(t, err)
	api, err := registry.Open(db, registry.Options{ScopeDir: home})
	require.NoError(t, err)
	require.NoError(t, web.Bind(ctx, "web", port))
	require.NoError(t, api.Bind(ctx, "api", freePort(t)))
	hs, err := web.Who(ctx, port)
	require.NoError(t, err)
	hs = tcpOnly(hs)
	require.Len(t, hs, 1)
	require.Len(t, hs[0].Procs, 1)
	p := hs[0].Procs[0]
	assert.Equal(t, cmd.Process.Pid, p.PID)
	assert.Equal(t, home, p.Dir, "the directory, as /proc gives it")
	assert.Nil(t, p.Elsewhere, "not api's directory: a tmpfs of another mount namespace")
	rep, err := web.Doctor(ctx, registry.DoctorOptions{})
	require.NoError(t, err)
	for _, f := range rep.Findings {
		assert.NotContains(t, f.Text, "is held by pid", "doctor's note on the same")
	}
}
