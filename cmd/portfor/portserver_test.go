//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// squatAsNobody runs the test binary as user nobody (65534), bound to the
// Unix socket addr and answering "22\n" to everyone, until the test ends.
func squatAsNobody(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a squatter as another user (nobody, uid 65534)")
	}
	// The go tool's build directory is closed to other users: run a copy
	// (a hard link when it can be) from a directory nobody may enter.
	dir := t.TempDir()
	for d := dir; len(d) > len(os.TempDir()); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(dir, "portfor.test")
	if err := os.Link(exe, bin); err != nil {
		b, err := os.ReadFile(exe)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(bin, b, 0o755))
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_SQUAT="+addr)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		require.Equal(t, "ready\n", line, "the squatter")
	case <-time.After(10 * time.Second):
		require.Fail(t, "the squatter was not ready within 10s")
	}
	return cmd
}

// issue 9, point 2: another user binds the port server's name first.
// `portfor pick` must not print the squatter's port 22, and `portfor serve`
// must say who holds the name.
func TestSquattedPortServerAddress(t *testing.T) {
	addr := fmt.Sprintf("@portfor-squat-%d-%d", os.Getpid(), time.Now().UnixNano())
	squatter := squatAsNobody(t, addr)
	db := newDB(t)
	who := fmt.Sprintf("uid 65534 (nobody), pid %d", squatter.Process.Pid)

	cmd := command(t, db, "pick", strconv.Itoa(os.Getpid()))
	cmd.Env = append(cmd.Env, "PORTSERVER_ADDRESS="+addr)
	o := result(t, cmd)
	assert.Equal(t, 1, o.code)
	assert.Equal(t, "", o.stdout, "no port from a squatter")
	assert.Regexp(t, `^portfor: port server @portfor-squat-\S+: run by `+regexp.QuoteMeta(who)+`, neither you \(uid 0\) nor root: not trusting its answers\n$`, o.stderr)

	o = portfor(t, db, "serve", "--address", addr)
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, `^portfor: listen @portfor-squat-\S+: the name is taken: `+regexp.QuoteMeta(who)+` holds it: give --address a socket path in a directory only your users can write\n$`, o.stderr)
}

// A server of one's own user answering a privileged port is not believed.
func TestPickRefusesPrivilegedPortsFromAServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadString('\n') // the request
			fmt.Fprint(c, "22\n")
			c.Close()
		}
	}()
	cmd := command(t, newDB(t), "pick", strconv.Itoa(os.Getpid()))
	cmd.Env = append(cmd.Env, "PORTSERVER_ADDRESS="+sock)
	o := result(t, cmd)
	assert.Equal(t, 1, o.code)
	assert.Equal(t, "", o.stdout)
	assert.Equal(t, 1, strings.Count(o.stderr, "\n"), o.stderr)
	assert.Contains(t, o.stderr, "portfor: port server "+sock+": answered port 22, below 1024")
}

// result runs cmd and returns what it printed and its exit code.
func result(t *testing.T, cmd *exec.Cmd) outcome {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return outcome{stdout.String(), stderr.String(), code}
}

// silentServer listens on a Unix socket and takes every request without
// ever answering (a port server that hangs), until the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	return sock
}

// `portfor pick` against a port server that accepts and never answers
// gives up after --timeout, with one line on stderr, instead of hanging
// until it is killed.
func TestPickGivesUpOnASilentPortServer(t *testing.T) {
	sock := silentServer(t)
	for _, args := range [][]string{{"-t", "0.3"}, {"--timeout=300ms", "-n", "2"}} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a guard: pick must end long before
		base := command(t, newDB(t), append(append([]string{"pick"}, args...), strconv.Itoa(os.Getpid()))...)
		cmd := exec.CommandContext(ctx, base.Path, base.Args[1:]...)
		cmd.Env, cmd.Dir = append(base.Env, "PORTSERVER_ADDRESS="+sock), base.Dir
		start := time.Now()
		o := result(t, cmd)
		require.NotErrorIs(t, ctx.Err(), context.DeadlineExceeded, "pick %v still waited for the silent server after 30s", args)
		cancel()
		assert.Equal(t, 1, o.code, "pick %v", args)
		assert.Equal(t, "", o.stdout)
		assert.Equal(t, "portfor: port server "+sock+": no answer within 300ms (-t/--timeout waits longer)\n", o.stderr, "pick %v", args)
		assert.Less(t, time.Since(start), 10*time.Second)
	}
	o := portfor(t, newDB(t), "pick", "-t", "0", strconv.Itoa(os.Getpid()))
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "portfor: --timeout 0: want more than 0")
}
