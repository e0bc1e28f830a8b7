//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
)

// holdLock creates the registry and holds its lock exclusively, as a stuck
// portfor would.
func holdLock(t *testing.T, db string) {
	t.Helper()
	require.Equal(t, 0, portfor(t, db, "warmup").code)
	l, err := lock.Acquire(context.Background(), db+".lock", lock.Exclusive)
	require.NoError(t, err)
	t.Cleanup(func() { l.Unlock() })
}

func TestLockTimeoutExits1NamingTheLockFile(t *testing.T) {
	db := newDB(t)
	holdLock(t, db)
	for _, c := range []struct {
		args     []string
		op, mode string
	}{
		{[]string{"web"}, `forward "web"`, "exclusive"}, // a new name waits to write
		{[]string{"get", "warmup"}, `lookup "warmup"`, "shared"},
		// A known name: the quick path tries the lock once and leaves the
		// wait, and its error, to the full path.
		{[]string{"warmup"}, `forward "warmup"`, "exclusive"}, // forward tries shared at once, then waits to write
	} {
		o := portfor(t, db, append([]string{"--lock-timeout", "0.1"}, c.args...)...)
		assert.Equal(t, 1, o.code)
		assert.Empty(t, o.stdout)
		want := fmt.Sprintf(`portfor: %s: lock %s.lock: timed out after `, c.op, db)
		assert.True(t, strings.HasPrefix(o.stderr, want), "stderr %q", o.stderr)
		assert.Contains(t, o.stderr, fmt.Sprintf("waiting for %s lock (held by pid %d)\n", c.mode, os.Getpid()))
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"))
	}
}

// waitQueued waits until a portfor process has queued a request for a new
// name in the pending directory (docs/design.md, "Group commit"): it is then
// waiting for the lock or for a batch to carry the request out. What the
// files in it are called is the queue's business.
func waitQueued(t *testing.T, db string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for ; time.Now().Before(deadline); <-tick.C {
		if entries, _ := os.ReadDir(db + ".pending"); len(entries) > 0 {
			return
		}
	}
	t.Fatalf("no request was ever queued beside %s", db)
}

func TestInterruptWhileWaitingExits130(t *testing.T) {
	db := newDB(t)
	holdLock(t, db)
	cmd := command(t, db, "--lock-timeout", "1m", "web")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	waitQueued(t, db)
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode())
	assert.Less(t, time.Since(start), 5*time.Second, "exits promptly")
	assert.Empty(t, stdout.String())
	assert.Equal(t, "portfor: interrupted\n", stderr.String())
	entries, err := os.ReadDir(db + ".pending")
	require.NoError(t, err)
	assert.Empty(t, entries, "an interrupted caller takes its request back")
}

// startLockHolder runs a child process that holds the registry's lock.
func startLockHolder(t *testing.T, db string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_HOLD_LOCK="+db+".lock", "GORACE=atexit_sleep_ms=0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	_, err = cmd.StdinPipe() // closed when the test ends: the holder then lets go
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	return cmd
}

func TestStoppedLockHolderTimesOutAndDeadOneLetsGo(t *testing.T) {
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "warmup").code)
	holder := startLockHolder(t, db)
	require.NoError(t, holder.Process.Signal(syscall.SIGSTOP))

	for _, args := range [][]string{{"web"}, {"get", "warmup"}, {"list"}, {"pick", fmt.Sprint(os.Getpid())}, {"release", "warmup"}} {
		start := time.Now()
		o := portfor(t, db, append([]string{"--lock-timeout", "0.2"}, args...)...)
		assert.Equal(t, 1, o.code, "%v", args)
		assert.Empty(t, o.stdout)
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"), "one line: %q", o.stderr)
		assert.Contains(t, o.stderr, db+".lock: timed out after ")
		assert.Contains(t, o.stderr, fmt.Sprintf("(held by pid %d)", holder.Process.Pid))
		assert.Less(t, time.Since(start), 10*time.Second)
	}

	// A holder that dies lets go at once: the next call needs no timeout.
	require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
	_ = holder.Wait()
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "--lock-timeout", "0", "release", "warmup"))
}

func TestInterruptWhileWaitingForAPortExits130(t *testing.T) {
	db := newDB(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cmd := command(t, db, "wait", "-t", "1m", fmt.Sprint(port), "free")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// Its probes reaching our listener show the wait is under way.
	c, err := ln.Accept()
	require.NoError(t, err)
	c.Close()
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode())
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, "portfor: interrupted\n", stderr.String())
}
