//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openPTY returns the master and slave ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	return m, s
}

func TestWaitShowsProgressOnATerminalOnly(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	master, slave := openPTY(t)
	defer master.Close()
	cmd := command(t, newDB(t), "wait", "-t", "0.3", port)
	cmd.Stderr = slave
	require.NoError(t, cmd.Start())
	slave.Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, master) // ends with EIO once the child has exited
	_ = cmd.Wait()
	assert.Contains(t, out.String(), "\r\x1b[Kportfor: waiting 0.")
	assert.Contains(t, out.String(), "for localhost:"+port+" to be occupied")
	assert.Contains(t, out.String(), "not bound on localhost")

	// Not a terminal: no progress, only the error line.
	o := portfor(t, newDB(t), "wait", "-t", "0.3", port)
	assert.NotContains(t, o.stderr, "waiting")
}
