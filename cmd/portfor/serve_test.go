//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 10: `portfor serve` says when it listens (stdout, a descriptor,
// systemd's NOTIFY_SOCKET) and takes a socket passed by systemd.

// sockDir is t.TempDir(), or a shorter directory removed at the end when a
// socket path in it would pass the 108-byte limit of sun_path.
func sockDir(t *testing.T) string {
	t.Helper()
	if d := t.TempDir(); len(d) < 80 {
		return d
	}
	d, err := os.MkdirTemp("", "pf")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// askPort speaks the port-server protocol on addr: pid and a newline, a
// port and a newline back.
func askPort(t *testing.T, addr string) int {
	t.Helper()
	c, err := net.Dial("unix", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = fmt.Fprintf(c, "%d\n", os.Getpid())
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	p, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	require.NoError(t, err, "answer %q", line)
	return p
}

// readLine reads one line from r within 30 s.
func readLine(t *testing.T, r *bufio.Reader, what string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		line, _ := r.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		return line
	case <-time.After(30 * time.Second):
		require.FailNow(t, "nothing on "+what+" within 30 s")
		return ""
	}
}

// stopServe sends SIGTERM and waits for a clean exit.
func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "exits 0 on SIGTERM")
}

func inPool(t *testing.T, p, lo, hi int) {
	t.Helper()
	assert.True(t, p >= lo && p <= hi, "port %d from the pool %d-%d", p, lo, hi)
}

func TestServePrintAddressAndReadyFD(t *testing.T) {
	db := newDB(t)
	sock := filepath.Join(sockDir(t), "ps.sock")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := command(t, db, "serve", "-q", "--print-address", "--ready-fd", "3", "--address", sock, "--pool", "21100-21199")
	cmd.ExtraFiles = []*os.File{w}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w.Close()

	ready := bufio.NewReader(r)
	assert.Equal(t, sock+"\n", readLine(t, ready, "--ready-fd 3"))
	rest, err := io.ReadAll(ready)
	require.NoError(t, err)
	assert.Empty(t, rest, "the descriptor is closed after the address")
	assert.Equal(t, sock+"\n", readLine(t, bufio.NewReader(stdout), "stdout"))
	inPool(t, askPort(t, sock), 21100, 21199) // listening once told so: no retry

	stopServe(t, cmd)
	assert.Empty(t, stderr.String(), "-q: no startup line")
}

func TestServeStartupLineUnlessQuiet(t *testing.T) {
	db := newDB(t)
	addr := fmt.Sprintf("@portfor-serve-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := command(t, db, "serve", "--address", addr, "--pool", "21200-21299", "--print-address")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	assert.Equal(t, addr+"\n", readLine(t, bufio.NewReader(stdout), "stdout"), "an abstract address as given, with its @")
	assert.Equal(t, "portfor: serving ports 21200-21299 on "+addr+"\n", readLine(t, bufio.NewReader(stderr), "stderr"))
	inPool(t, askPort(t, addr), 21200, 21299)
	stopServe(t, cmd)
}

func TestServeReadyFDUsage(t *testing.T) {
	db := newDB(t)
	for fd, msg := range map[string]string{
		"1":  "--ready-fd 1: want a descriptor of 3 or above (--print-address writes to stdout)",
		"-3": "--ready-fd -3: want a descriptor of 3 or above (--print-address writes to stdout)",
		"97": "--ready-fd 97: not an open file descriptor",
	} {
		o := portfor(t, db, "serve", "--address", "@portfor-never-bound", "--ready-fd", fd)
		assert.Equal(t, outcome{"", "portfor: " + msg + " (try 'portfor serve --help')\n", 2}, o, "--ready-fd %s", fd)
	}
}

// listenNotify binds a notification socket as systemd does (a datagram
// socket; a path, or an abstract name) and returns a reader of its
// datagrams.
func listenNotify(t *testing.T, addr string) func() string {
	t.Helper()
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return func() string {
		t.Helper()
		require.NoError(t, l.SetReadDeadline(time.Now().Add(30*time.Second)))
		buf := make([]byte, 4096)
		n, err := l.Read(buf)
		require.NoError(t, err, "a notification within 30 s")
		return string(buf[:n])
	}
}

func TestServeNotifiesSystemd(t *testing.T) {
	dir := sockDir(t)
	for kind, notify := range map[string]string{
		"path":     filepath.Join(dir, "notify.sock"),
		"abstract": fmt.Sprintf("@portfor-notify-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		t.Run(kind, func(t *testing.T) {
			next := listenNotify(t, notify)
			db := newDB(t)
			sock := filepath.Join(dir, kind+".sock")
			cmd := command(t, db, "serve", "-q", "--address", sock, "--pool", "21300-21399")
			cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+notify)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			assert.Equal(t, "READY=1\nSTATUS=serving ports 21300-21399 on "+sock, next())
			inPool(t, askPort(t, sock), 21300, 21399)
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			assert.Equal(t, "STOPPING=1", next())
			require.NoError(t, cmd.Wait())
		})
	}
}

// socketActivate returns systemd-socket-activate's path, skipping the test
// when it is missing outside CI (.ci/run installs it).
func socketActivate(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs systemd-socket-activate (Debian's systemd package); .ci/run installs it")
		}
		require.NoError(t, err, "CI must have systemd-socket-activate")
	}
	return path
}

// activate runs `portfor serve args...` under systemd-socket-activate with
// saArgs (-l, --fdname...), which opens the sockets, waits for a first
// client and execs the test binary as the CLI with them (LISTEN_FDS...).
// It returns once every socket listens, and the command's stderr.
func activate(t *testing.T, db string, saArgs []string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	env := []string{"PORTFOR_TEST_AS_CLI=1", "PORTFOR_DB=" + db, "GORACE=atexit_sleep_ms=0"}
	var all []string
	all = append(all, saArgs...)
	for _, e := range env {
		all = append(all, "-E", e)
	}
	all = append(all, os.Args[0], "serve")
	all = append(all, args...)
	cmd := exec.Command(socketActivate(t), all...)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := bufio.NewReader(stderr)
	for n := strings.Count(strings.Join(saArgs, " "), "-l "); n > 0; n-- {
		assert.Regexp(t, `^Listening on .* as \d+\.\n$`, readLine(t, r, "systemd-socket-activate's stderr"))
	}
	return cmd, r
}

// serverLine reads stderr up to the server's first line (skipping
// systemd-socket-activate's own).
func serverLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	for {
		line := readLine(t, r, "stderr")
		if strings.HasPrefix(line, "portfor:") || line == "" {
			return line
		}
	}
}

// TestServeSocketActivated passes the server its socket the way systemd
// does, with systemd's own tool.
func TestServeSocketActivated(t *testing.T) {
	dir := sockDir(t)
	sock := filepath.Join(dir, "ps.sock")
	notify := listenNotify(t, filepath.Join(dir, "notify.sock"))
	db := newDB(t)
	cmd, stderr := activate(t, db, []string{"-l", sock, "--fdname=portfor", "-E", "NOTIFY_SOCKET=" + filepath.Join(dir, "notify.sock")},
		"--address", "@portfor-not-this-one", "--pool", "21400-21499")

	inPool(t, askPort(t, sock), 21400, 21499) // the first client starts the server
	assert.Equal(t, "portfor: serving ports 21400-21499 on "+sock+" (socket passed by the service manager)\n", serverLine(t, stderr))
	assert.Equal(t, "READY=1\nSTATUS=serving ports 21400-21499 on "+sock+" (socket passed by the service manager)", notify())
	inPool(t, askPort(t, sock), 21400, 21499)

	// systemd-socket-activate execs: its pid is the server's.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, "STOPPING=1", notify())
	require.NoError(t, cmd.Wait())
	_, err := os.Lstat(sock)
	assert.NoError(t, err, "the socket file is the service manager's: left in place")
}

// TestServeSocketActivatedByName: of several sockets, serve takes the one
// named --fd-name (default portfor) and closes the others.
func TestServeSocketActivatedByName(t *testing.T) {
	dir := sockDir(t)
	other, sock := filepath.Join(dir, "other.sock"), filepath.Join(dir, "ps.sock")
	cmd, stderr := activate(t, newDB(t), []string{"-l", other, "-l", sock, "--fdname=other:portfor"}, "--pool", "21500-21599")
	inPool(t, askPort(t, sock), 21500, 21599)
	assert.Equal(t, "portfor: serving ports 21500-21599 on "+sock+" (socket passed by the service manager)\n", serverLine(t, stderr))
	_, err := net.Dial("unix", other)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the other socket is closed")
	stopServe(t, cmd)
}

// TestServeSocketActivatedWrongKind: a datagram socket is refused, saying
// what it is.
func TestServeSocketActivatedWrongKind(t *testing.T) {
	sock := filepath.Join(sockDir(t), "dg.sock")
	cmd, stderr := activate(t, newDB(t), []string{"-d", "-l", sock})
	c, err := net.Dial("unixgram", sock)
	require.NoError(t, err)
	_, err = c.Write([]byte("wake up"))
	require.NoError(t, err)
	c.Close()
	assert.Equal(t, `portfor: socket passed by the service manager: socket "unknown" (fd 3): a Unix datagram socket, not a stream one: want ListenStream=, not ListenDatagram= or ListenSequentialPacket=`+"\n", serverLine(t, stderr))
	var ee *exec.ExitError
	require.ErrorAs(t, cmd.Wait(), &ee)
	assert.Equal(t, 1, ee.ExitCode())
}
