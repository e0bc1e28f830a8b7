//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	} {
		o := portfor(t, db, append([]string{"--timeout", "0.1"}, c.args...)...)
		assert.Equal(t, 1, o.code)
		assert.Empty(t, o.stdout)
		want := fmt.Sprintf(`portfor: %s: lock %s.lock: timed out after `, c.op, db)
		assert.True(t, strings.HasPrefix(o.stderr, want), "stderr %q", o.stderr)
		assert.Contains(t, o.stderr, fmt.Sprintf("waiting for %s lock (held by pid %d)\n", c.mode, os.Getpid()))
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"))
	}
}

// waitQueued waits until a portfor process has queued a request for a new
// name: it is then waiting for the lock or an answer.
func waitQueued(t *testing.T, db string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for ; time.Now().Before(deadline); <-tick.C {
		if m, _ := filepath.Glob(db + ".pending/req-*"); len(m) > 0 {
			return
		}
	}
	t.Fatalf("no request was ever queued beside %s", db)
}

func TestInterruptWhileWaitingExits130(t *testing.T) {
	db := newDB(t)
	holdLock(t, db)
	cmd := exec.Command(os.Args[0], "--timeout", "1m", "web")
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_AS_CLI=1", "PORTFOR_DB="+db, "GORACE=atexit_sleep_ms=0")
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
}
