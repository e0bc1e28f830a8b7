package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A socket no process holds (here one in flight over a Unix socket, never
// received; the kernel's own, such as a VXLAN port, are the same) comes
// with its uid only, as ss shows it. As root, the note must not send the
// user off to become root: root sees every process there is to see.
func TestWhoSocketHeldByNoProcess(t *testing.T) {
	skipUnlessLinux(t)
	if os.Geteuid() != 0 {
		t.Skip("without root the note names other users' processes, rightly")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(pair[0]); unix.Close(pair[1]) })
	require.NoError(t, unix.Sendmsg(pair[0], []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0))
	f.Close()
	ln.Close() // now only the message in pair[1]'s queue holds the socket

	o := portfor(t, newDB(t), "who", strconv.Itoa(port))
	require.Equal(t, 0, o.code, o.stderr)
	// Another program may hold the UDP port of the same number: its line
	// comes after.
	assert.True(t, strings.HasPrefix(o.stdout, fmt.Sprintf("tcp 127.0.0.1:%d uid 0 root: process not visible\n", port)), o.stdout)
	assert.NotContains(t, o.stderr, "need root")
	assert.Equal(t, "portfor: no process in sight holds some sockets (the kernel's own or ones passed over a Unix socket, processes in another pid namespace, or other users' without CAP_SYS_PTRACE)\n", o.stderr)
}
