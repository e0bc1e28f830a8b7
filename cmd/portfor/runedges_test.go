//go:build linux

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a hostile review of `portfor run` found.

// `--listen-address ::1` and `::` are offered by the help text: bindSocket
// once called As4() before it looked at Is6(), and panicked.
func TestRunListenIPv6Address(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no ::1 on this host")
	} else {
		l.Close()
	}
	for _, addr := range []string{"::1", "::", "[::1]"} {
		db := newDB(t)
		o := portfor(t, db, "run", "--listen", "--listen-address", addr, "web", "--",
			"/usr/bin/python3", "-c", `import socket,os; s=socket.socket(socket.AF_INET6, fileno=3); print(os.environ["LISTEN_FDS"], s.getsockname()[0])`)
		first, _, _ := strings.Cut(o.stderr, "\n")
		assert.Equal(t, 0, o.code, "--listen-address %s: %s", addr, first)
		want := strings.Trim(addr, "[]")
		assert.Equal(t, "1 "+want+"\n", o.stdout, "--listen-address %s", addr)
	}
}

// When a descriptor in 3.. is the Go runtime's own (the poller, made early
// by a non-blocking stdin, forced here by the test hook), bash moves the
// sockets and execs CMD: CMD must see the same argv as on the direct path
// (cat, not /usr/bin/cat), and the caller's BASH_ENV, which that bash must
// not read itself. (A file without #! is left alone: the direct exec says
// 126, bash runs it as a script; docs/design.md says so.)
func TestRunListenShellPathKeepsArgv0(t *testing.T) {
	db := newDB(t)
	portOf(t, db, "web")
	got := map[string]string{}
	for _, shell := range []string{"", "1"} {
		cmd := command(t, db, "run", "--listen", "web", "--", "cat", "/proc/self/cmdline")
		cmd.Env = append(cmd.Env, "PORTFOR_TEST_RUN_SHELL="+shell)
		out, err := cmd.Output()
		require.NoError(t, err)
		got[shell] = strings.ReplaceAll(string(out), "\x00", " ")
	}
	assert.Equal(t, "cat /proc/self/cmdline ", got[""])
	assert.Equal(t, got[""], got["1"], "argv through bash")

	// BASH_ENV is CMD's, and the moving bash does not source it.
	marker := filepath.Join(t.TempDir(), "sourced")
	rc := filepath.Join(t.TempDir(), "bashenv")
	require.NoError(t, os.WriteFile(rc, []byte("echo x >> "+marker+"\n"), 0o644))
	cmd := command(t, db, "run", "--listen", "web", "--", "sh", "-c", `echo "$BASH_ENV"`)
	cmd.Env = append(cmd.Env, "PORTFOR_TEST_RUN_SHELL=1", "BASH_ENV="+rc)
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, rc+"\n", string(out))
	assert.NoFileExists(t, marker, "the moving bash read BASH_ENV")
}
