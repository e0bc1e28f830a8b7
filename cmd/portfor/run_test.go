//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// portOf assigns name (if new) and returns its port.
func portOf(t *testing.T, db, name string) int {
	t.Helper()
	o := portfor(t, db, "forward", name)
	require.Equal(t, 0, o.code, o.stderr)
	p, err := strconv.Atoi(strings.TrimSpace(o.stdout))
	require.NoError(t, err)
	return p
}

func TestRunSetsPortsInEnvironmentAndArgs(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "run", "web", "my-api", "--", "/bin/sh", "-c", `echo "$PORT $WEB_PORT $MY_API_PORT $1 $2 $3"`, "sh", "{port}", "--port={port:my-api}", "{ports}")
	require.Equal(t, 0, o.code, o.stderr)
	web, api := portOf(t, db, "web"), portOf(t, db, "my-api")
	assert.Equal(t, fmt.Sprintf("%d %d %d %d --port=%d {ports}\n", web, web, api, web, api), o.stdout)
	assert.Empty(t, o.stderr)

	// NAME=PORT as forward reads it, with forward's note for a known name.
	o = portfor(t, db, "run", fmt.Sprintf("web=%d", web%60000+1025), "--", "/bin/sh", "-c", `echo $PORT`)
	assert.Equal(t, outcome{fmt.Sprintf("%d\n", web), fmt.Sprintf("portfor: web keeps %d (asked %d); 'portfor move web %d' changes it\n", web, web%60000+1025, web%60000+1025), 0}, o)

	// The variables replace inherited ones.
	cmd := command(t, db, "run", "web", "--", "env")
	cmd.Env = append(cmd.Env, "PORT=1", "WEB_PORT=2")
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, []string{"PORT=" + strconv.Itoa(web)}, grepLines(string(out), "PORT="))
	assert.Equal(t, []string{"WEB_PORT=" + strconv.Itoa(web)}, grepLines(string(out), "WEB_PORT="))
	assert.Empty(t, grepLines(string(out), "LISTEN_"), "no sockets, no LISTEN_ variables")
}

func grepLines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func TestRunExitStatusIsCommands(t *testing.T) {
	db := newDB(t)
	assert.Equal(t, outcome{"", "", 3}, portfor(t, db, "run", "web", "--", "/bin/sh", "-c", "exit 3"))
	// CMD, in portfor's place, dies of the signal: a shell says 143.
	err := command(t, db, "run", "web", "--", "/bin/sh", "-c", "kill -TERM $$").Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	st := ee.Sys().(syscall.WaitStatus)
	assert.True(t, st.Signaled() && st.Signal() == syscall.SIGTERM, "%v", st)
	sh := exec.Command("/bin/sh", "-c", `"$0" run web -- /bin/sh -c 'kill -TERM $$'; echo $?`, os.Args[0])
	sh.Env = command(t, db).Env
	out, err := sh.Output()
	require.NoError(t, err)
	assert.Equal(t, "143\n", string(out))
	assert.Equal(t, outcome{"", "portfor: no-such-command-xyz: command not found\n", 127}, portfor(t, db, "run", "web", "--", "no-such-command-xyz"))
	plain := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644))
	assert.Equal(t, outcome{"", "portfor: " + plain + ": permission denied (not an executable file)\n", 126}, portfor(t, db, "run", "web", "--", plain))
}

func TestRunUsageErrorsWriteNothing(t *testing.T) {
	db := newDB(t)
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"run", "web", "--", "echo", "{port:api}"}, `{port:api} in "{port:api}": api is not among the names given`},
		{[]string{"run", "web", "--", "echo", "{port:web"}, `"{port:web": {port:NAME} without its '}'`},
		{[]string{"run", "web"}, "missing '-- CMD': portfor run NAME... -- CMD ARGS..."},
		{[]string{"run", "--", "true"}, "missing NAME"},
		{[]string{"run", "web", "--"}, "missing CMD after '--'"},
		{[]string{"run", "--udp", "web", "--", "true"}, "--listen-address and --udp go with --listen"},
		{[]string{"run", "my-web", "my_web", "--", "true"}, "my-web and my_web would both set MY_WEB_PORT"},
		{[]string{"run", "--listen", "--listen-address", "nowhere", "web", "--", "true"}, `--listen-address "nowhere": want an IP address without a zone (127.0.0.1, ::1, 0.0.0.0, ::)`},
		{[]string{"run", "--bogus", "web", "--", "true"}, "flag provided but not defined: --bogus"},
	} {
		o := portfor(t, db, tt.args...)
		assert.Equal(t, outcome{"", "portfor: " + tt.stderr + " (try 'portfor run --help')\n", 2}, o, "%q", tt.args)
	}
	_, err := os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "usage errors write nothing")
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 5*time.Millisecond, "timed out waiting for %s", what)
}

func TestRunSignalsReachCommand(t *testing.T) {
	db := newDB(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			ready, got := filepath.Join(dir, "ready"), filepath.Join(dir, "got")
			name := strings.TrimPrefix(fmt.Sprint(map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGHUP: "HUP"}[sig]), "")
			script := fmt.Sprintf(`trap 'echo %s > "$2"; exit 7' %s; echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; while :; do sleep 0.01; done`, name, name)
			cmd := command(t, db, "run", "web", "--", "/bin/sh", "-c", script, "sh", ready, got)
			require.NoError(t, cmd.Start())
			waitFor(t, "the command to start", func() bool { _, err := os.Stat(ready); return err == nil })
			pid, err := os.ReadFile(ready)
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(cmd.Process.Pid), strings.TrimSpace(string(pid)), "CMD took portfor's place")
			require.NoError(t, cmd.Process.Signal(sig))
			err = cmd.Wait()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 7, ee.ExitCode())
			b, err := os.ReadFile(got)
			require.NoError(t, err)
			assert.Equal(t, name+"\n", string(b))
		})
	}
}

// syncBuffer is what a running child writes to and a test reads from
// at once (an assertion's message reads it even when the assertion holds).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start starts cmd, and ends it at the end of the test if it still runs.
func start(t *testing.T, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &stderr
}

// needTool skips without path (an absolute path or a command), unless
// under CI, where .ci/run installs it.
func needTool(t *testing.T, check *exec.Cmd, pkg string) {
	t.Helper()
	if err := check.Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", pkg, err)
		}
		t.Skipf("needs Debian's %s (apt-get install %s): %v", pkg, pkg, err)
	}
}

// readOneLine reads one line from addr (tcp or udp), sending send first,
// trying again until something listens there (portfor binds the port
// after it starts) or a deadline passes.
func readOneLine(t *testing.T, network, addr, send string) string {
	t.Helper()
	var line string
	var err error
	tried := func() bool {
		line, err = tryLine(network, addr, send)
		return err == nil
	}
	if !assert.Eventually(t, tried, 20*time.Second, 10*time.Millisecond) {
		require.NoError(t, err)
	}
	return line
}

func tryLine(network, addr, send string) (string, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	wait := 10 * time.Second
	if network == "udp" {
		wait = 100 * time.Millisecond // a datagram sent too early is lost
	}
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			return "", err
		}
	}
	return bufio.NewReader(c).ReadString('\n')
}

// pythonConsumer answers one client on the first socket that
// systemd.daemon.listen_fds() finds with what it knows of it.
const pythonConsumer = `
import os, socket, sys
from systemd import daemon
fds = daemon.listen_fds()
s = socket.socket(fileno=fds[0])
while s.type == socket.SOCK_DGRAM:
    data, peer = s.recvfrom(100)
    s.sendto(("udp %s %d %s\n" % (os.environ["LISTEN_FDNAMES"], s.getsockname()[1], data.decode())).encode(), peer)
c, _ = s.accept()
c.sendall(("tcp %s %d %d\n" % (os.environ["LISTEN_FDNAMES"], len(fds), s.getsockname()[1])).encode())
`

func TestRunListenHandsSocketsToPythonSystemd(t *testing.T) {
	needTool(t, exec.Command("/usr/bin/python3", "-c", "import systemd.daemon"), "python3-systemd")
	db := newDB(t)
	web, api := portOf(t, db, "web"), portOf(t, db, "api")
	cmd := command(t, db, "run", "--listen", "web", "api", "--", "/usr/bin/python3", "-c", pythonConsumer)
	stderr := start(t, cmd)
	// portfor listens before CMD starts: the connection waits in the backlog.
	line := readOneLine(t, "tcp", fmt.Sprintf("127.0.0.1:%d", web), "")
	assert.Equal(t, fmt.Sprintf("tcp web:api 2 %d\n", web), line)
	// The second socket listens on api's port: the kernel queues the connection.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", api))
	require.NoError(t, err)
	c.Close()
	require.NoError(t, cmd.Wait(), stderr.String())
}

func TestRunListenUDP(t *testing.T) {
	needTool(t, exec.Command("/usr/bin/python3", "-c", "import systemd.daemon"), "python3-systemd")
	db := newDB(t)
	dns := portOf(t, db, "dns")
	cmd := command(t, db, "run", "--listen", "--udp", "dns", "--", "/usr/bin/python3", "-c", pythonConsumer)
	stderr := start(t, cmd)
	assert.Equal(t, fmt.Sprintf("udp dns %d hello\n", dns), readOneLine(t, "udp", fmt.Sprintf("127.0.0.1:%d", dns), "hello"), stderr.String())
}

func TestRunListenHandsSocketToGunicorn(t *testing.T) {
	needTool(t, exec.Command("/usr/bin/gunicorn", "--version"), "gunicorn")
	db := newDB(t)
	web := portOf(t, db, "web")
	app := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(app, "app.py"), []byte(`import os
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("gunicorn %s %s" % (os.environ.get("WEB_PORT"), environ["SERVER_PORT"])).encode()]
`), 0o644))
	cmd := command(t, db, "run", "--listen", "web", "--", "/usr/bin/gunicorn", "--workers", "1", "--chdir", app, "app:app")
	stderr := start(t, cmd)
	client := &http.Client{Timeout: 20 * time.Second}
	var resp *http.Response
	waitFor(t, "portfor to bind the port", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", web))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", web))
	require.NoError(t, err, stderr.String())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("gunicorn %d %d", web, web), string(body))
}

func TestRunListenTakenPort(t *testing.T) {
	db := newDB(t)
	web := portOf(t, db, "web")
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", web))
	require.NoError(t, err)
	defer l.Close()
	o := portfor(t, db, "run", "--listen", "web", "--", "true")
	assert.Equal(t, outcome{"", fmt.Sprintf("portfor: run: port %d of web: tcp 127.0.0.1:%d: in use by another process\n", web, web), 1}, o)
}

// TestRunListenManySockets hands over more sockets than the Go runtime
// leaves free below its own descriptors, directly and through bash, and
// checks that CMD gets nothing of portfor's but them.
func TestRunListenManySockets(t *testing.T) {
	db := newDB(t)
	names := []string{"a", "b", "c", "d", "e", "f"}
	for _, shell := range []string{"", "1"} {
		args := append(append([]string{"run", "--listen"}, names...), "--", "/bin/sh", "-c",
			`echo $LISTEN_FDS $LISTEN_FDNAMES $(test "$LISTEN_PID" = $$ && echo pid-ok); cd /proc/$$/fd 2>/dev/null && for fd in *; do echo "$fd $(readlink $fd)"; done`)
		cmd := command(t, db, args...)
		cmd.Env = append(cmd.Env, "PORTFOR_TEST_RUN_SHELL="+shell)
		out, err := cmd.Output()
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		want := "6 a:b:c:d:e:f pid-ok"
		assert.Equal(t, want, lines[0], "through bash: %q", shell)
		if runtime.GOOS != "linux" {
			continue
		}
		sockets := 0
		for _, l := range lines[1:] {
			fd, link, _ := strings.Cut(l, " ")
			n, _ := strconv.Atoi(fd)
			if n >= 3 && n <= 8 {
				assert.Regexp(t, `^socket:`, link, "fd %d", n)
				sockets++
			}
			// Inherited descriptors pass; none of portfor's own does.
			assert.NotRegexp(t, `registry|cgroup|anon_inode`, link, "fd %d", n)
		}
		assert.Equal(t, 6, sockets)
	}
}
