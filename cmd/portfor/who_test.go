package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenMain is the test binary as a listener (PORTFOR_TEST_LISTEN). With
// PORTFOR_TEST_LISTEN_MODE=ignore-term it ignores SIGTERM; with share it
// hands its socket to a child of its own that holds it as well (mode
// held), as a server shares its socket with the workers it forks.
func listenMain(spec string) int {
	mode := os.Getenv("PORTFOR_TEST_LISTEN_MODE")
	switch mode {
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "held": // the socket is descriptor 3
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	network, addr, _ := strings.Cut(spec, " ")
	var port int
	var c io.Closer
	if strings.HasPrefix(network, "udp") {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		c, port = pc, pc.LocalAddr().(*net.UDPAddr).Port
	} else {
		l, err := net.Listen(network, addr)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		c, port = l, l.Addr().(*net.TCPAddr).Port
	}
	if mode == "share" {
		f, err := c.(interface{ File() (*os.File, error) }).File()
		if err == nil {
			child := exec.Command(os.Args[0])
			child.Env = append(os.Environ(), "PORTFOR_TEST_LISTEN_MODE=held")
			child.Stdin, child.Stderr, child.ExtraFiles = os.Stdin, os.Stderr, []*os.File{f}
			err = child.Start() // returns once the child runs, holding the socket
			f.Close()
		}
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	fmt.Println("ready", port)
	io.Copy(io.Discard, os.Stdin)
	c.Close()
	return 0
}

// listener is a child process holding a socket.
type listener struct {
	pid  int
	port int
	dir  string
}

// startListener runs the test binary (or exe, under the argv prefix pre)
// as a listener on network and addr, in a directory of its own, with env
// added to its environment, and waits for its "ready" line. ok is false
// when it could not listen (no IPv6).
func startListener(t *testing.T, exe string, pre []string, dir, network, addr string, env ...string) (listener, bool) {
	t.Helper()
	if exe == "" {
		exe = os.Args[0]
	}
	if dir == "" {
		dir = t.TempDir()
	}
	argv := append(append([]string{}, pre...), exe)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "PORTFOR_TEST_LISTEN="+network+" "+addr, "GORACE=atexit_sleep_ms=0"), env...)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	port, found := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !found {
		t.Logf("listener on %s %s: %q", network, addr, line)
		return listener{}, false
	}
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	return listener{pid: cmd.Process.Pid, port: p, dir: real}, true
}

// mustListen starts the test binary as a listener on network and addr,
// skipping the test on IPv6 where there is none.
func mustListen(t *testing.T, network, addr string) listener {
	t.Helper()
	l, ok := startListener(t, "", nil, "", network, addr)
	if !ok {
		if strings.HasSuffix(network, "6") {
			t.Skip("no IPv6 loopback here")
		}
		t.Fatal("the listener did not start")
	}
	return l
}

func skipUnlessLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("who reads sockets through Linux's sock_diag")
	}
}

func program() string {
	base := filepath.Base(os.Args[0])
	return base[:min(len(base), 15)] // /proc/PID/comm keeps 15 bytes
}

func userOf(t *testing.T, uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	require.NoError(t, err)
	return u.Username
}

func TestWhoTCPUDPAndIPv6Listeners(t *testing.T) {
	skipUnlessLinux(t)
	me := userOf(t, os.Geteuid())
	for _, tc := range []struct{ network, addr, proto, shown string }{
		{"tcp4", "127.0.0.1:0", "tcp", "127.0.0.1"},
		{"udp4", "127.0.0.1:0", "udp", "127.0.0.1"},
		{"tcp6", "[::1]:0", "tcp", "[::1]"},
		{"udp6", "[::1]:0", "udp", "[::1]"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			l := mustListen(t, tc.network, tc.addr)
			o := portfor(t, newDB(t), "who", strconv.Itoa(l.port))
			require.Equal(t, 0, o.code, o.stderr)
			assert.Empty(t, o.stderr)
			want := fmt.Sprintf("%s %s:%d pid %d %s %s %s: %s", tc.proto, tc.shown, l.port, l.pid, me, program(), l.dir, os.Args[0])
			assert.True(t, strings.HasPrefix(o.stdout, want), "want %q\ngot  %q", want, o.stdout)
			assert.Equal(t, 1, strings.Count(o.stdout, "\n"), o.stdout)
		})
	}
}

func TestWhoFreePortAndBadArguments(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	port := freePort(t)
	o := portfor(t, db, "who", strconv.Itoa(port))
	assert.Equal(t, outcome{"", fmt.Sprintf("portfor: nothing listens on or is bound to port %d\n", port), 1}, o)
	o = portfor(t, db, "who", "--json", strconv.Itoa(port))
	assert.Equal(t, 1, o.code)
	assert.Equal(t, "[]\n", o.stdout)
	for _, args := range [][]string{{"who"}, {"who", "0"}, {"who", "65536"}, {"who", "+80"}, {"who", "no-such-name"}, {"who", "bad name!"}, {"who", "1", "2"}} {
		o := portfor(t, db, args...)
		assert.Equal(t, 2, o.code, "%v: %+v", args, o)
		assert.Empty(t, o.stdout, "%v", args)
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"), "%v: %q", args, o.stderr)
	}
}

// webListener registers web in scope feat in db and starts a listener on
// its port, which it returns too.
func webListener(t *testing.T, db string) (listener, string) {
	t.Helper()
	o := portfor(t, db, "--scope", "feat", "web")
	require.Equal(t, 0, o.code, o.stderr)
	port := strings.TrimSpace(o.stdout)
	l, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:"+port)
	require.True(t, ok)
	return l, port
}

func TestWhoRegisteredNameAndJSON(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	l, port := webListener(t, db)

	o := portfor(t, db, "--scope", "feat", "who", "web")
	require.Equal(t, 0, o.code, o.stderr)
	want := fmt.Sprintf("tcp 127.0.0.1:%s pid %d %s %s %s (web, scope feat): ", port, l.pid, userOf(t, os.Geteuid()), program(), l.dir)
	assert.True(t, strings.HasPrefix(o.stdout, want), "want %q\ngot  %q", want, o.stdout)
	// By port, the name shows too; without the scope, web is unknown.
	o = portfor(t, db, "who", port)
	assert.Contains(t, o.stdout, " (web, scope feat): ")
	assert.Equal(t, 2, portfor(t, db, "who", "web").code)

	o = portfor(t, db, "--scope", "feat", "who", "--json", "web")
	require.Equal(t, 0, o.code, o.stderr)
	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &got), o.stdout)
	require.Len(t, got, 1)
	assert.Equal(t, map[string]any{
		"proto": "tcp", "address": "127.0.0.1", "port": float64(l.port), "uid": float64(os.Geteuid()),
		"user": userOf(t, os.Geteuid()), "hidden": false, "name": "web", "scope": "feat",
		"processes": []any{map[string]any{"pid": float64(l.pid), "program": program(), "dir": l.dir,
			"command": got[0]["processes"].([]any)[0].(map[string]any)["command"]}},
	}, got[0])
	assert.True(t, strings.HasPrefix(got[0]["processes"].([]any)[0].(map[string]any)["command"].(string), os.Args[0]))
}

// worldCopy copies the test binary into a directory every user may enter,
// for running it as another user.
func worldCopy(t *testing.T) (exe, dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "portfor-who-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	b, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	exe = filepath.Join(dir, "portfor.test")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	return exe, dir
}

// asNobody is the argv prefix that runs a command as the user nobody, or
// the test is skipped where this process cannot do that.
func asNobody(t *testing.T) []string {
	t.Helper()
	pre, why := nobodyArgv()
	if pre == nil {
		t.Skip(why)
	}
	return pre
}

// nobodyArgv is the argv prefix that runs a command as the user nobody
// (setpriv), or nil and why this process cannot do that.
func nobodyArgv() ([]string, string) {
	if os.Geteuid() != 0 {
		return nil, "making a socket of another user needs root (setpriv --reuid)"
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return nil, "setpriv is not installed"
	}
	if _, err := user.Lookup("nobody"); err != nil {
		return nil, "no user nobody"
	}
	pre := []string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
	if _, err := user.LookupGroup("nogroup"); err != nil {
		pre[2] = "--regid=nobody"
	}
	return pre, ""
}

// portforAs runs exe (a copy of the test binary) as the command under the
// argv prefix pre (asNobody's), in dir, with a registry that does not
// exist.
func portforAs(t *testing.T, pre []string, exe, dir string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(pre[0], append(append(pre[1:len(pre):len(pre)], exe), args...)...)
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_AS_CLI=1", "PORTFOR_DB="+filepath.Join(dir, "none", "registry.db"), "GORACE=atexit_sleep_ms=0")
	cmd.Dir = dir
	return outcomeOf(t, cmd)
}

// nobodysListener starts a listener of user nobody's on 127.0.0.1 (or
// skips the test where it cannot), from a copy of the test binary in dir;
// pre and exe run that copy as nobody (portforAs).
func nobodysListener(t *testing.T) (l listener, pre []string, exe, dir string) {
	t.Helper()
	skipUnlessLinux(t)
	pre = asNobody(t)
	exe, dir = worldCopy(t)
	l, ok := startListener(t, exe, pre, dir, "tcp4", "127.0.0.1:0")
	require.True(t, ok)
	return l, pre, exe, dir
}

func TestWhoOtherUsers(t *testing.T) {
	// A listener of nobody's: root sees all of it.
	l, pre, exe, dir := nobodysListener(t)
	o := portfor(t, newDB(t), "who", strconv.Itoa(l.port))
	require.Equal(t, 0, o.code, o.stderr)
	want := fmt.Sprintf("tcp 127.0.0.1:%d pid %d nobody portfor.test %s: %s", l.port, l.pid, dir, exe)
	assert.True(t, strings.HasPrefix(o.stdout, want), "want %q\ngot  %q", want, o.stdout)

	// A listener of root's, asked by nobody: the uid, no pid, and a note.
	root, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:0")
	require.True(t, ok)
	o = portforAs(t, pre, exe, dir, "who", strconv.Itoa(root.port))
	assert.Equal(t, outcome{fmt.Sprintf("tcp 127.0.0.1:%d uid 0 root: process not visible\n", root.port),
		"portfor: the processes holding some sockets could not be seen (other users' need root)\n", 0}, o)
}

var ssPID = regexp.MustCompile(`pid=(\d+)`)

// TestWhoAgreesWithSS compares `portfor who --json` with `ss -ltnup` on the
// same sockets: a TCP socket of this process shared with a child it
// started (as after a fork), UDP, IPv6, dual-stack, and another user's
// listener where the test can make one. Both must list the same sockets
// (protocol, address, port) held by the same pids.
func TestWhoAgreesWithSS(t *testing.T) {
	skipUnlessLinux(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) is not installed")
	}
	db := newDB(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	sleeper := exec.Command("sleep", "600") // holds the socket as fd 3 until killed
	sleeper.ExtraFiles = []*os.File{f}
	require.NoError(t, sleeper.Start())
	f.Close()
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	_, ok := startListener(t, "", nil, "", "udp4", fmt.Sprintf("127.0.0.1:%d", port))
	require.True(t, ok)
	ports := []int{port}
	if _, ok := startListener(t, "", nil, "", "tcp6", fmt.Sprintf("[::1]:%d", port)); !ok {
		t.Log("no IPv6 loopback: the ::1 and [::] listeners are not compared")
	} else if dual, ok := startListener(t, "", nil, "", "tcp", "[::]:0"); ok {
		ports = append(ports, dual.port)
	}
	if pre, why := nobodyArgv(); pre == nil {
		t.Logf("another user's listener is not compared: %s", why)
	} else {
		exe, dir := worldCopy(t)
		other, ok := startListener(t, exe, pre, dir, "tcp4", "127.0.0.1:0")
		require.True(t, ok)
		ports = append(ports, other.port)
	}

	for _, p := range ports {
		out, err := exec.Command("ss", "-H", "-ltnup", "sport", "=", fmt.Sprintf(":%d", p)).Output()
		require.NoError(t, err)
		var fromSS []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 5 {
				continue
			}
			local := fields[4]
			if strings.HasPrefix(local, "*:") { // ss's name for [::] taking IPv4 too
				local = "[::]" + local[1:]
			}
			var pids []int
			for _, m := range ssPID.FindAllStringSubmatch(line, -1) {
				pid, _ := strconv.Atoi(m[1])
				pids = append(pids, pid)
			}
			slices.Sort(pids)
			fromSS = append(fromSS, fmt.Sprintf("%s %s %v", fields[0], local, slices.Compact(pids)))
		}
		slices.Sort(fromSS)

		o := portfor(t, db, "who", "--json", strconv.Itoa(p))
		require.Equal(t, 0, o.code, o.stderr)
		var got []whoEntry
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &got))
		var ours []string
		for _, e := range got {
			var pids []int
			for _, pr := range e.Processes {
				pids = append(pids, pr.PID)
			}
			slices.Sort(pids)
			ours = append(ours, fmt.Sprintf("%s %s %v", e.Proto, net.JoinHostPort(e.Address, strconv.Itoa(e.Port)), pids))
		}
		slices.Sort(ours)
		assert.Equal(t, fromSS, ours, "port %d", p)
		if p == port {
			assert.Contains(t, strings.Join(ours, "\n"), strconv.Itoa(sleeper.Process.Pid), "the child sharing the socket")
		}
	}
}

// encoding/json escapes C0 controls but writes DEL and the C1 controls
// (U+0080-U+009F) as they are, and a terminal acts on U+009B as on ESC [.
// who --json and list --json print program names and command lines that
// any process chooses: those come escaped too, and read back the same.
func TestWhoJSONEscapesC1Controls(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	name := "x\u009b2J\u0085\x7fy"
	exe := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.Symlink(os.Args[0], exe))
	l, ok := startListener(t, exe, nil, "", "tcp4", "127.0.0.1:0")
	require.True(t, ok)
	require.Equal(t, 0, portfor(t, db, "bind", "web", strconv.Itoa(l.port)).code)
	for _, args := range [][]string{{"who", "--json", strconv.Itoa(l.port)}, {"list", "--json"}} {
		o := portfor(t, db, args...)
		require.Equal(t, 0, o.code, o.stderr)
		for _, b := range []string{"\u009b", "\u0085", "\x7f"} {
			assert.NotContains(t, o.stdout, b, "%v: %q", args, o.stdout)
		}
		assert.Contains(t, o.stdout, `x\u009b2J\u0085\u007fy`, "%v", args)
		var v any
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &v), "%v", args)
		assert.Contains(t, fmt.Sprint(v), name, "%v: read back the same", args)
	}
}
