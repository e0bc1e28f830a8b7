package registry_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/store"
)

// TestSoak runs 64 processes doing forward / get / release / lease / list on
// one registry for PORTFOR_SOAK (e.g. 30s; the test is skipped without it,
// and .ci/run sets it), then checks that no port has two holders and both
// files are consistent, and reports the throughput.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("PORTFOR_SOAK"))
	if err != nil {
		t.Skip("set PORTFOR_SOAK=30s to run the soak test")
	}
	const procs = 64
	reg := mustOpen(t)
	type child struct {
		cmd   *exec.Cmd
		lines *bufio.Scanner
	}
	var cs []child
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "PORTFOR_TEST_DB="+reg.Path(),
			fmt.Sprintf("PORTFOR_TEST_CHURN=s%d", i), fmt.Sprintf("PORTFOR_TEST_OWNER=%d", os.Getpid()),
			"PORTFOR_TEST_FOR="+d.String())
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		cs = append(cs, child{cmd, bufio.NewScanner(stdout)})
	}
	start := time.Now()
	ops, acked := 0, map[string]int{}
	for i, c := range cs {
		for c.lines.Scan() {
			f := strings.Fields(c.lines.Text())
			require.NotEqual(t, "error:", f[0], "helper %d: %s", i, c.lines.Text())
			switch {
			case f[0] == "done":
				n, _ := strconv.Atoi(f[1])
				ops += n
			case f[0] == "ok" && f[1] == "forward":
				acked[f[2]], _ = strconv.Atoi(f[3])
			case f[0] == "ok" && f[1] == "release":
				delete(acked, f[2])
			}
		}
		require.NoError(t, c.cmd.Wait(), "helper %d", i)
	}
	wall := time.Since(start)

	list, err := reg.List(ctx)
	require.NoError(t, err)
	ports := map[int]string{}
	for _, a := range list {
		prev, dup := ports[a.Port]
		require.False(t, dup, "port %d held by %s and %s", a.Port, prev, a.ID)
		ports[a.Port] = a.ID
	}
	for id, port := range acked {
		assert.Equal(t, id, ports[port], "acknowledged %s=%d", id, port)
	}
	for _, path := range []string{reg.Path(), reg.LeasePath()} {
		db, err := store.Open(path, store.Options{ReadOnly: true})
		require.NoError(t, err)
		require.NoError(t, db.View(func(tx *store.Tx) error { return tx.Check() }), path)
		require.NoError(t, db.Close())
	}
	t.Logf("soak: %d processes, %v: %d operations (mutating and reading; loop iterations), %.0f ops/s; %d entries at the end, no duplicate ports, indexes consistent",
		procs, wall.Round(time.Millisecond), ops, float64(ops)/wall.Seconds(), len(list))
}
