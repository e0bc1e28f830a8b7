package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

func TestParseWaitArgs(t *testing.T) {
	tests := []struct {
		args []string
		want waitArgs
		err  string
	}{
		{[]string{"8080"}, waitArgs{targets: []string{"8080"}, state: "occupied", timeout: defaultWaitTimeout}, ""},
		{[]string{"a:1", "b:2", "free"}, waitArgs{targets: []string{"a:1", "b:2"}, state: "free", timeout: defaultWaitTimeout}, ""},
		{[]string{"-t", "5", "8080", "occupied"}, waitArgs{targets: []string{"8080"}, state: "occupied", timeout: 5 * time.Second}, ""},
		{[]string{"8080", "--timeout=500ms"}, waitArgs{targets: []string{"8080"}, state: "occupied", timeout: 500 * time.Millisecond}, ""},
		{[]string{"8080", "--", "echo", "-t", "x"}, waitArgs{targets: []string{"8080"}, state: "occupied", timeout: defaultWaitTimeout, command: []string{"echo", "-t", "x"}}, ""},
		{[]string{"free"}, waitArgs{targets: []string{"free"}, state: "occupied", timeout: defaultWaitTimeout}, ""}, // a lone word is a target (a name)
		{nil, waitArgs{}, "missing TARGET"},
		{[]string{"occupied", "free"}, waitArgs{}, ""},
		{[]string{"8080", "--"}, waitArgs{}, "missing CMD after '--'"},
		{[]string{"8080", "-t"}, waitArgs{}, "-t needs a value"},
		{[]string{"8080", "-t", "soon"}, waitArgs{}, `--timeout: invalid duration "soon"`},
		{[]string{"8080", "--bogus"}, waitArgs{}, "flag provided but not defined: --bogus"},
		{[]string{"a:1", "occupied", "free"}, waitArgs{}, "two states, occupied and free: give one, last"},
		{[]string{"a:1", "free", "free"}, waitArgs{}, "two states, free and free"},
		{[]string{"-q", "a:1", "--insecure", "--status", "2xx"}, waitArgs{targets: []string{"a:1"}, state: "occupied", timeout: defaultWaitTimeout,
			quiet: true, insecure: true, status: registry.StatusSet{{First: 200, Last: 299}}}, ""},
		{[]string{"a:1", "--status=200,204", "-t=2"}, waitArgs{targets: []string{"a:1"}, state: "occupied", timeout: 2 * time.Second,
			status: registry.StatusSet{{First: 200, Last: 200}, {First: 204, Last: 204}}}, ""},
		{[]string{"a:1", "--status", "600"}, waitArgs{}, `--status: invalid status list "600"`},
		{[]string{"a:1", "--status"}, waitArgs{}, "--status needs a value"},
	}
	for _, tt := range tests {
		got, err := parseWaitArgs(tt.args)
		if tt.err != "" {
			require.Error(t, err, "%q", tt.args)
			assert.Contains(t, err.Error(), tt.err, "%q", tt.args)
			continue
		}
		require.NoError(t, err, "%q", tt.args)
		if tt.want.targets != nil {
			assert.Equal(t, tt.want, got, "%q", tt.args)
		}
	}
}

func FuzzParseWaitArgs(f *testing.F) {
	f.Add("8080", "free", "-t", "5")
	f.Add("--", "x", "", "")
	f.Add("a:1", "--timeout=1", "occupied", "--")
	f.Add("http://x/", "--status", "2xx", "-q")
	f.Add("a:1", "free", "free", "--insecure")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		w, err := parseWaitArgs([]string{a, b, c, d})
		if err != nil {
			return
		}
		if len(w.targets) == 0 && !w.help {
			t.Fatalf("no targets and no error for %q", []string{a, b, c, d})
		}
		if w.timeout < 0 || (w.state != "occupied" && w.state != "free") {
			t.Fatalf("bad parse %+v", w)
		}
	})
}

func listen(t *testing.T, network, addr string) (net.Listener, int) {
	t.Helper()
	l, err := net.Listen(network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l, l.Addr().(*net.TCPAddr).Port
}

func TestWaitAndCheckCommands(t *testing.T) {
	db := newDB(t)
	_, busy := listen(t, "tcp4", "127.0.0.1:0")
	free := freePort(t)
	p := strconv.Itoa

	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", p(busy)))
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", "localhost:"+p(busy), "occupied", "-t", "5"))
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", p(free), "free"))

	o := portfor(t, db, "wait", "-t", "0.05", p(free))
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, fmt.Sprintf(`^portfor: Port %d not bound on localhost \(waited \d+ms\)\.\n$`, free), o.stderr)
	o = portfor(t, db, "wait", "-t", "50ms", p(busy), "free")
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, fmt.Sprintf(`^portfor: Port %d not free on localhost \(waited \d+ms\)\.\n$`, busy), o.stderr)

	// Several targets: all must be reached; failures make one line.
	o = portfor(t, db, "wait", "-t", "0.05", p(busy), p(free), "[::1]:"+p(free))
	assert.Equal(t, 1, o.code)
	assert.Equal(t, 1, strings.Count(o.stderr, "\n"), o.stderr)
	assert.Contains(t, o.stderr, fmt.Sprintf("Port %d not bound on localhost", free))
	assert.Contains(t, o.stderr, fmt.Sprintf("Port %d not bound on ::1", free))

	// This process holds busy: check says so on stderr.
	byMe := fmt.Sprintf("occupied by %s (pid %d)", program(), os.Getpid())
	o = portfor(t, db, "check", p(busy))
	assert.Equal(t, outcome{"occupied\n", o.stderr, 1}, o)
	assert.True(t, strings.HasPrefix(o.stderr, fmt.Sprintf("portfor: localhost:%d: %s in ", busy, byMe)), o.stderr)
	assert.Equal(t, outcome{"free\n", "", 0}, portfor(t, db, "check", "127.0.0.1:"+p(free)))
	assert.Equal(t, outcome{"free\n", "", 0}, portfor(t, db, "check", "--udp", p(busy)))

	// A registered name stands for its port on localhost.
	require.Equal(t, 0, portfor(t, db, "bind", "svc", p(busy)).code)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", "svc", "occupied"))
	o = portfor(t, db, "check", "svc")
	assert.Equal(t, outcome{"occupied\n", o.stderr, 1}, o)
	assert.Contains(t, o.stderr, byMe)
	assert.Equal(t, outcome{"", "portfor: \"nope\" is neither a registered name nor a host:port\n", 1}, portfor(t, db, "wait", "nope"))
}

func TestWaitRunsTheCommandAfterward(t *testing.T) {
	db := newDB(t)
	_, busy := listen(t, "tcp4", "127.0.0.1:0")
	o := portfor(t, db, "wait", strconv.Itoa(busy), "--", "sh", "-c", "echo ready; exit 7")
	assert.Equal(t, outcome{"ready\n", "", 7}, o)
	o = portfor(t, db, "wait", "-t", "0.05", strconv.Itoa(freePort(t)), "--", "sh", "-c", "echo never")
	assert.Equal(t, 1, o.code)
	assert.Empty(t, o.stdout, "the command does not run after a timeout")
	o = portfor(t, db, "wait", strconv.Itoa(busy), "--", "/no/such/program")
	assert.Equal(t, outcome{"", "portfor: /no/such/program: command not found\n", 127}, o)
}

func TestWaitSeesAServerStartLater(t *testing.T) {
	db := newDB(t)
	port := freePort(t)
	cmd := command(t, db, "wait", "-t", "30", strconv.Itoa(port))
	require.NoError(t, cmd.Start())
	l, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(port)) // IPv6 only: localhost must still see it
	if err != nil {
		l, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	}
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, cmd.Wait())
}

func TestFindCommand(t *testing.T) {
	db := newDB(t)
	_, a := listen(t, "tcp4", "0.0.0.0:0")
	b := freePort(t)
	list := fmt.Sprintf("80,%d,%d", a, b)
	o := portfor(t, db, "find", list)
	assert.Equal(t, outcome{fmt.Sprintf("%d\n", b), "portfor: warning: skipping ports below 1024 in 80\n", 0}, o)

	o = portfor(t, db, "find", strconv.Itoa(a))
	assert.Equal(t, 1, o.code)
	assert.Equal(t, fmt.Sprintf("portfor: find free port in %d: no port available\n", a), o.stderr)
	o = portfor(t, db, "find", "--any", strconv.Itoa(a))
	assert.Equal(t, 0, o.code)
	assert.NotEqual(t, fmt.Sprintf("%d\n", a), o.stdout)

	assert.Equal(t, outcome{"", "portfor: invalid port: invalid port list \"9-1\": range \"9-1\" runs backwards (try 'portfor find --help')\n", 2}, portfor(t, db, "find", "9-1"))
}

func TestFindBelow1024IsOneLineOnFailure(t *testing.T) {
	o := portfor(t, newDB(t), "find", "1")
	assert.Equal(t, outcome{"", "portfor: find free port in 1: no port available (ports below 1024 skipped in 1)\n", 1}, o)
}
