package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/nstest"
	"github.com/portfor/portfor/internal/procinfo"
)

// identity returns what names pid for its lifetime.
func identity(t *testing.T, pid int) procinfo.Identity {
	t.Helper()
	id, err := procinfo.Lookup(pid)
	require.NoError(t, err)
	return id
}

// requireGone waits (a minute at most) until the process id names has
// exited.
func requireGone(t *testing.T, id procinfo.Identity) {
	t.Helper()
	require.Eventually(t, func() bool {
		alive, err := procinfo.Alive(id)
		return err == nil && !alive
	}, time.Minute, 5*time.Millisecond, "%v is still running", id)
}

func requireAlive(t *testing.T, id procinfo.Identity) {
	t.Helper()
	alive, err := procinfo.Alive(id)
	require.NoError(t, err)
	require.True(t, alive, "%v has exited", id)
}

func TestStopListenersOfEveryKind(t *testing.T) {
	skipUnlessLinux(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"}, {"udp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}, {"udp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			l := mustListen(t, tc.network, tc.addr)
			id := identity(t, l.pid)
			db := newDB(t)
			o := portfor(t, db, "stop", strconv.Itoa(l.port))
			assert.Equal(t, outcome{fmt.Sprintf("stopped %s (pid %d) in %s: SIGTERM\n", program(), l.pid, l.dir), "", 0}, o)
			requireGone(t, id)
			assert.Equal(t, 1, portfor(t, db, "who", strconv.Itoa(l.port)).code, "the port is free")
		})
	}
}

func TestStopKillsWhatIgnoresSIGTERMOnlyWithKill(t *testing.T) {
	skipUnlessLinux(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	l, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:0", "PORTFOR_TEST_LISTEN_MODE=ignore-term")
	require.True(t, ok)
	id := identity(t, l.pid)
	db, port := newDB(t), strconv.Itoa(l.port)
	proc := fmt.Sprintf("%s (pid %d) in %s", program(), l.pid, l.dir)

	o := portfor(t, db, "stop", "-t", "0.1", port)
	assert.Equal(t, outcome{"signalled " + proc + ": SIGTERM\n", "portfor: port " + port + " is still held after 100ms (--kill sends SIGKILL)\n", 1}, o)
	requireAlive(t, id)

	o = portfor(t, db, "stop", port, "--kill", "--timeout=100ms")
	assert.Equal(t, outcome{"killed " + proc + ": SIGKILL\n", "", 0}, o)
	requireGone(t, id)
}

func TestStopEveryProcessSharingTheSocket(t *testing.T) {
	skipUnlessLinux(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	l, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:0", "PORTFOR_TEST_LISTEN_MODE=share")
	require.True(t, ok)
	db, port := newDB(t), strconv.Itoa(l.port)
	o := portfor(t, db, "who", port)
	require.Equal(t, 0, o.code, o.stderr)
	var holders []int
	for _, m := range regexp.MustCompile(`(?m)^tcp \S+ pid (\d+) `).FindAllStringSubmatch(o.stdout, -1) {
		pid, _ := strconv.Atoi(m[1])
		holders = append(holders, pid)
	}
	require.Len(t, holders, 2, o.stdout)
	require.Contains(t, holders, l.pid)
	slices.Sort(holders)
	ids := []procinfo.Identity{identity(t, holders[0]), identity(t, holders[1])}

	o = portfor(t, db, "stop", port)
	want := ""
	for _, pid := range holders {
		want += fmt.Sprintf("stopped %s (pid %d) in %s: SIGTERM\n", program(), pid, l.dir)
	}
	assert.Equal(t, outcome{want, "", 0}, o)
	requireGone(t, ids[0])
	requireGone(t, ids[1])
}

func TestStopLeavesOtherUsersAlone(t *testing.T) {
	skipUnlessLinux(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	// Root stops nobody's listener.
	l, pre, exe, dir := nobodysListener(t)
	id := identity(t, l.pid)
	o := portfor(t, newDB(t), "stop", strconv.Itoa(l.port))
	assert.Equal(t, outcome{fmt.Sprintf("stopped portfor.test (pid %d) in %s: SIGTERM\n", l.pid, dir), "", 0}, o)
	requireGone(t, id)

	// nobody leaves root's alone: it cannot see the process.
	root, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:0")
	require.True(t, ok)
	id = identity(t, root.pid)
	port := strconv.Itoa(root.port)
	o = portforAs(t, pre, exe, dir, "stop", port)
	assert.Equal(t, outcome{"left alone: tcp 127.0.0.1:" + port + " of user root: no process holding it can be seen (another user's without root, or in another pid namespace)\n",
		"portfor: port " + port + " is still held\n", 1}, o)
	requireAlive(t, id)

	// Nor when it can see the process (CAP_DAC_READ_SEARCH and
	// CAP_SYS_PTRACE let it read /proc/PID/fd): not nobody's.
	ptrace := append(pre[:len(pre):len(pre)], "--inh-caps=+sys_ptrace,+dac_read_search", "--ambient-caps=+sys_ptrace,+dac_read_search")
	o = portforAs(t, ptrace, exe, dir, "stop", port)
	if o.code == 127 || strings.Contains(o.stderr, "setpriv") {
		t.Skipf("setpriv cannot raise ambient capabilities here: %s", o.stderr)
	}
	assert.Equal(t, outcome{fmt.Sprintf("left alone: %s (pid %d) of user root in %s: another user's process (only root stops those)\n", program(), root.pid, root.dir),
		"portfor: port " + port + " is still held\n", 1}, o)
	requireAlive(t, id)
}

func TestStopNamesJSONAndBadArguments(t *testing.T) {
	skipUnlessLinux(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	db := newDB(t)
	l, port := webListener(t, db)
	id := identity(t, l.pid)

	// Without the scope, web is unknown: a usage error, nothing stopped.
	o := portfor(t, db, "stop", "web")
	assert.Equal(t, outcome{"", `portfor: "web" is neither a port nor a registered name (try 'portfor stop --help')` + "\n", 2}, o)
	requireAlive(t, id)

	o = portfor(t, db, "--scope", "feat", "stop", "--json", "web")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Empty(t, o.stderr)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &got), o.stdout)
	command := ""
	if ps, ok := got["terminated"].([]any); ok && len(ps) == 1 {
		command, _ = ps[0].(map[string]any)["command"].(string)
	}
	assert.True(t, strings.HasPrefix(command, os.Args[0]), "command %q", command)
	assert.Equal(t, map[string]any{
		"port": float64(l.port), "killed": []any{}, "left_alone": []any{}, "held": []any{},
		"terminated": []any{map[string]any{"pid": float64(l.pid), "program": program(), "dir": l.dir, "command": command}},
	}, got)
	requireGone(t, id)

	// Nothing holds the port any more: done, with a note.
	o = portfor(t, db, "--scope", "feat", "stop", "web")
	assert.Equal(t, outcome{"", "portfor: nothing listens on or is bound to port " + port + "\n", 0}, o)

	for _, args := range [][]string{{"stop"}, {"stop", "0"}, {"stop", "65536"}, {"stop", "+80"}, {"stop", "no-such-name"},
		{"stop", "bad name!"}, {"stop", "1", "2"}, {"stop", "-t", "soon", port}, {"stop", "--timeout=-1", port}, {"stop", "-t"}} {
		o := portfor(t, db, args...)
		assert.Equal(t, 2, o.code, "%v: %+v", args, o)
		assert.Empty(t, o.stdout, "%v", args)
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"), "%v: %q", args, o.stderr)
	}
}

// portfor in a pid namespace of its own whose /proc is still the parent
// namespace's (unshare --pid without --mount-proc) finds a listener outside
// through /proc but cannot reach it by that pid: it is left alone, and stop
// says why. With a /proc of its own, it cannot see the listener at all.
func TestStopFromAnotherPidNamespace(t *testing.T) {
	skipUnlessLinux(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs unshare (util-linux) and root")
	}
	l := mustListen(t, "tcp4", "127.0.0.1:0")
	id := identity(t, l.pid)
	port, dir, root := strconv.Itoa(l.port), t.TempDir(), userOf(t, os.Geteuid())

	o := portforAs(t, []string{unshare, "--pid", "--fork"}, os.Args[0], dir, "stop", port)
	assert.Equal(t, outcome{fmt.Sprintf("left alone: %s (pid %d) of user %s in %s: the process cannot be identified for certain (another pid namespace)\n", program(), l.pid, root, l.dir),
		"portfor: port " + port + " is still held\n", 1}, o)
	requireAlive(t, id)

	o = portforAs(t, []string{unshare, "--pid", "--fork", "--mount-proc"}, os.Args[0], dir, "stop", port)
	assert.Equal(t, outcome{"left alone: tcp 127.0.0.1:" + port + " of user " + root + ": no process holding it can be seen (another user's without root, or in another pid namespace)\n",
		"portfor: port " + port + " is still held\n", 1}, o)
	requireAlive(t, id)
}
