//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
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
	o := portfor(t, db, "--timeout", "0.1", "web")
	assert.Equal(t, 1, o.code)
	assert.Empty(t, o.stdout)
	want := fmt.Sprintf(`portfor: forward "web": lock %s.lock: timed out after `, db)
	assert.True(t, strings.HasPrefix(o.stderr, want), "stderr %q", o.stderr)
	assert.Contains(t, o.stderr, fmt.Sprintf("waiting for shared lock (held by pid %d)\n", os.Getpid()))
	assert.Equal(t, 1, strings.Count(o.stderr, "\n"))
}

// waitBlocked waits until pid is queued for a flock, as /proc/locks shows.
func waitBlocked(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for ; time.Now().Before(deadline); <-tick.C {
		b, err := os.ReadFile("/proc/locks")
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[1] == "->" && f[5] == fmt.Sprint(pid) {
				return
			}
		}
	}
	t.Fatalf("pid %d never blocked on the lock", pid)
}

func TestInterruptWhileWaitingExits130(t *testing.T) {
	db := newDB(t)
	holdLock(t, db)
	cmd := exec.Command(os.Args[0], "--timeout", "1m", "web")
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_AS_CLI=1", "PORTFOR_DB="+db, "GORACE=atexit_sleep_ms=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	waitBlocked(t, cmd.Process.Pid)
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode())
	assert.Less(t, time.Since(start), 5*time.Second, "exits promptly")
	assert.Empty(t, stdout.String())
	assert.Equal(t, "portfor: interrupted\n", stderr.String())
}
