//go:build unix

package activation_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/activation"
)

// With ACTIVATION_TEST_CHILD=1 the test binary is a socket-activated
// server: it reports what Files and UnixListener made of its descriptors,
// one line each, then answers one connection on each listener with its
// name.
func TestMain(m *testing.M) {
	if os.Getenv("ACTIVATION_TEST_CHILD") == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	files, err := activation.Files()
	fmt.Printf("files %d %v\n", len(files), err)
	fmt.Printf("env %q %q %q\n", os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"))
	var ls []*net.UnixListener
	for _, f := range files {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		cloexec := err == nil && flags&unix.FD_CLOEXEC != 0
		name := f.Name()
		l, err := activation.UnixListener(f)
		if err != nil {
			fmt.Printf("%s cloexec=%v: %v\n", name, cloexec, err)
			continue
		}
		fmt.Printf("%s cloexec=%v: listening on %s\n", name, cloexec, l.Addr())
		ls = append(ls, l)
	}
	fmt.Println("done")
	for _, l := range ls {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(c, "hello from %s\n", l.Addr())
		c.Close()
		l.Close()
	}
	return 0
}

// shortTempDir is t.TempDir(), or a shorter directory when a socket path
// in it would pass the ~104-byte limit of sun_path.
func shortTempDir(t *testing.T) string {
	t.Helper()
	if d := t.TempDir(); len(d) < 80 {
		return d
	}
	d, err := os.MkdirTemp("", "act")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// activated starts the test binary as a child with files as descriptors
// 3, 4, ... and env, through a shell that sets LISTEN_PID to its own pid
// and execs (a Go parent cannot know the child's pid before it runs; the
// pid survives the exec). pid "" means LISTEN_PID=$$, else that value.
func activated(t *testing.T, pid string, files []*os.File, env ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	if pid == "" {
		pid = "$$"
	}
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=`+pid+` exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), append(env, "ACTIVATION_TEST_CHILD=1", "GORACE=atexit_sleep_ms=0")...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

func lines(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var out []string
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err, "after %q", out)
		if line == "done\n" {
			return out
		}
		out = append(out, strings.TrimSuffix(line, "\n"))
	}
}

func fileOf(t *testing.T, c interface{ File() (*os.File, error) }) *os.File {
	t.Helper()
	f, err := c.File()
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFilesFromAParent passes real sockets to a child the way systemd
// does: the listening Unix socket is served; a TCP listener, a datagram
// socket and a connected stream are refused, each saying what it is.
func TestFilesFromAParent(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "api.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	defer ul.Close()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tl.Close()
	dg, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "d.sock"), Net: "unixgram"})
	require.NoError(t, err)
	defer dg.Close()
	a, b, err := socketpair()
	require.NoError(t, err)
	defer a.Close()
	defer b.Close()

	files := []*os.File{fileOf(t, ul), fileOf(t, tl.(*net.TCPListener)), fileOf(t, dg), a}
	cmd, out := activated(t, "", files, "LISTEN_FDS=4", "LISTEN_FDNAMES=api:web:dgram:conn")
	got := lines(t, out)
	require.Len(t, got, 6, "%q", got)
	assert.Equal(t, "files 4 <nil>", got[0])
	assert.Equal(t, `env "" "" ""`, got[1], "the environment is consumed: children do not inherit it")
	assert.Equal(t, "api cloexec=true: listening on "+sock, got[2])
	assert.Equal(t, `web cloexec=true: socket "web" (fd 4): a TCP/IPv4 socket, not a Unix one: want a listening Unix stream socket (ListenStream=/path)`, got[3])
	assert.Equal(t, `dgram cloexec=true: socket "dgram" (fd 5): a Unix datagram socket, not a stream one: want ListenStream=, not ListenDatagram= or ListenSequentialPacket=`, got[4])
	assert.Equal(t, `conn cloexec=true: socket "conn" (fd 6): a Unix stream socket that is not listening (a connection, or Accept=yes in the socket unit): want Accept=no`, got[5])

	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	hello, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "hello from "+sock+"\n", string(hello))
	require.NoError(t, cmd.Wait())
}

func socketpair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b"), nil
}

// TestFilesForAnotherProcess: descriptors meant for another pid (a parent
// that forked) are left alone, and the environment is still consumed.
func TestFilesForAnotherProcess(t *testing.T) {
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(shortTempDir(t), "s.sock"), Net: "unix"})
	require.NoError(t, err)
	defer ul.Close()
	cmd, out := activated(t, "1", []*os.File{fileOf(t, ul)}, "LISTEN_FDS=1")
	assert.Equal(t, []string{"files 0 <nil>", `env "" "" ""`}, lines(t, out))
	require.NoError(t, cmd.Wait())
}

// TestFilesNotOpen: LISTEN_FDS counting more descriptors than were passed
// is an error naming the first missing one.
func TestFilesNotOpen(t *testing.T) {
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(shortTempDir(t), "s.sock"), Net: "unix"})
	require.NoError(t, err)
	defer ul.Close()
	cmd, out := activated(t, "", []*os.File{fileOf(t, ul)}, "LISTEN_FDS=200")
	got := lines(t, out)
	require.Len(t, got, 2)
	assert.Regexp(t, `^files 0 bad socket-activation environment: LISTEN_FDS=200, but descriptor \d+ is not open: bad file descriptor$`, got[0])
	require.NoError(t, cmd.Wait())
}

// TestNotify sends to a real notification socket, by path and by abstract
// name (Linux), as systemd makes them.
func TestNotify(t *testing.T) {
	addrs := []string{filepath.Join(shortTempDir(t), "notify.sock")}
	if runtime.GOOS == "linux" {
		addrs = append(addrs, fmt.Sprintf("@portfor-activation-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	}
	for _, addr := range addrs {
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		require.NoError(t, err)
		defer l.Close()
		t.Setenv("NOTIFY_SOCKET", addr)
		sent, err := activation.Notify("READY=1\nSTATUS=serving")
		require.NoError(t, err)
		assert.True(t, sent)
		_ = l.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 256)
		n, err := l.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, "READY=1\nSTATUS=serving", string(buf[:n]), addr)
		assert.Equal(t, addr, os.Getenv("NOTIFY_SOCKET"), "kept for later notifications")
	}

	t.Setenv("NOTIFY_SOCKET", "")
	sent, err := activation.Notify("READY=1")
	assert.False(t, sent)
	assert.NoError(t, err, "no manager listening: nothing to do")

	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	_, err = activation.Notify("READY=1")
	assert.EqualError(t, err, `notify NOTIFY_SOCKET="vsock:2:1234": want a socket path or @name (vsock is not supported)`)

	t.Setenv("NOTIFY_SOCKET", filepath.Join(shortTempDir(t), "nobody-listens.sock"))
	_, err = activation.Notify("READY=1")
	assert.ErrorContains(t, err, "nobody-listens.sock: dial unixgram")
}
