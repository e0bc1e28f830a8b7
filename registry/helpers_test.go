package registry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry"
)

// The test binary doubles as a helper process. With PORTFOR_TEST_HELPER set
// it reads "DB ID SUGGESTED" jobs from its environment, prints "ready",
// waits for one line on stdin ("go"), runs them and prints one result line
// per job: "PORT NANOSECONDS" or "error: ...".
func TestMain(m *testing.M) {
	if os.Getenv("PORTFOR_TEST_HELPER") != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

func helperMain() int {
	db := os.Getenv("PORTFOR_TEST_DB")
	ids := strings.Fields(os.Getenv("PORTFOR_TEST_IDS"))
	suggested, _ := strconv.Atoi(os.Getenv("PORTFOR_TEST_SUGGESTED"))
	reg, err := registry.Open(db, registry.Options{LockTimeout: time.Minute})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, id := range ids {
		start := time.Now()
		port, err := reg.ForwardPort(context.Background(), id, suggested)
		if err != nil {
			fmt.Fprintln(out, "error:", err)
			return 1
		}
		fmt.Fprintln(out, port, time.Since(start).Nanoseconds())
	}
	return 0
}

type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startHelpers starts one helper per job list and returns once all are ready.
func startHelpers(tb testing.TB, db string, suggested int, jobs [][]string) []*helper {
	tb.Helper()
	hs := make([]*helper, len(jobs))
	for i, ids := range jobs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "PORTFOR_TEST_HELPER=1", "PORTFOR_TEST_DB="+db,
			"PORTFOR_TEST_IDS="+strings.Join(ids, " "), "PORTFOR_TEST_SUGGESTED="+strconv.Itoa(suggested))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		require.NoError(tb, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(tb, err)
		require.NoError(tb, cmd.Start())
		h := &helper{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
		tb.Cleanup(func() { _ = h.cmd.Process.Kill(); _ = h.cmd.Wait() })
		hs[i] = h
	}
	for _, h := range hs {
		line, err := h.stdout.ReadString('\n')
		require.NoError(tb, err)
		require.Equal(tb, "ready\n", line)
	}
	return hs
}

type result struct {
	port    int
	latency time.Duration
}

// runHelpers releases all helpers at once and collects their results.
func runHelpers(tb testing.TB, hs []*helper) [][]result {
	tb.Helper()
	for _, h := range hs {
		_, err := io.WriteString(h.stdin, "go\n")
		require.NoError(tb, err)
	}
	out := make([][]result, len(hs))
	for i, h := range hs {
		sc := bufio.NewScanner(h.stdout)
		for sc.Scan() {
			var r result
			var ns int64
			_, err := fmt.Sscan(sc.Text(), &r.port, &ns)
			require.NoError(tb, err, "helper %d said %q", i, sc.Text())
			r.latency = time.Duration(ns)
			out[i] = append(out[i], r)
		}
		require.NoError(tb, h.cmd.Wait(), "helper %d", i)
	}
	return out
}

func mustOpen(tb testing.TB) *registry.Registry {
	tb.Helper()
	reg, err := registry.Open(filepath.Join(tb.TempDir(), "state", "registry.db"), registry.Options{})
	require.NoError(tb, err)
	return reg
}

// heldLock takes the registry's lock as another holder would and returns
// the function that lets it go.
func heldLock(tb testing.TB, path string) func() {
	tb.Helper()
	l, err := lock.Acquire(context.Background(), path, lock.Exclusive)
	require.NoError(tb, err)
	return func() { _ = l.Unlock() }
}
