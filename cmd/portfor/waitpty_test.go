//go:build linux

package main

import (
	"bytes"
	"io"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onTerminal runs portfor with stderr on a new pseudo-terminal, with the
// extra environment env, and returns what the terminal got.
func onTerminal(t *testing.T, env []string, args ...string) string {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	cmd := command(t, newDB(t), args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = slave
	require.NoError(t, cmd.Start())
	slave.Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, master) // ends with EIO once the child has exited
	_ = cmd.Wait()
	return out.String()
}

func TestWaitQuietHasNoProgressLine(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	out := onTerminal(t, []string{"TERM=xterm", "NO_COLOR="}, "wait", "-q", "-t", "0.3", port)
	assert.NotContains(t, out, "waiting")
	assert.NotContains(t, out, "\x1b")
	assert.Equal(t, 1, bytes.Count([]byte(out), []byte("\n")), "one error line: %q", out)
	assert.Contains(t, out, "not bound on localhost")

	_, busy := listen(t, "tcp4", "127.0.0.1:0")
	out = onTerminal(t, nil, "wait", "--quiet", strconv.Itoa(busy))
	assert.Empty(t, out, "nothing at all on success")
}

func TestWaitProgressIsPlainForDumbTerminalsAndNoColor(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	for _, env := range [][]string{{"TERM=dumb"}, {"TERM=xterm", "NO_COLOR=1"}} {
		out := onTerminal(t, env, "wait", "-t", "0.3", port)
		assert.Contains(t, out, "\rportfor: waiting 0.", env)
		assert.Contains(t, out, "for localhost:"+port+" to be occupied", env)
		assert.NotContains(t, out, "\x1b", "%v: no escape sequence", env)
		assert.Contains(t, out, "not bound on localhost", env)
	}
	out := onTerminal(t, []string{"TERM=xterm", "NO_COLOR="}, "wait", "-t", "0.3", port)
	assert.Contains(t, out, "\r\x1b[Kportfor: waiting 0.", "a capable terminal gets the line cleared")
}
