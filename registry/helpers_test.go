package registry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
// per job: "PORT NANOSECONDS" or "error: ...". With PORTFOR_TEST_HOLD set it
// takes that many leases for itself, prints them and holds them until its
// stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("PORTFOR_TEST_HELPER") != "" {
		os.Exit(helperMain())
	}
	if n := os.Getenv("PORTFOR_TEST_HOLD"); n != "" {
		os.Exit(holdMain(n))
	}
	if name := os.Getenv("PORTFOR_TEST_CHURN"); name != "" {
		os.Exit(churnMain(name))
	}
	if n := os.Getenv("PORTFOR_TEST_LEASER"); n != "" {
		os.Exit(leaserMain(n))
	}
	if mode := os.Getenv("PORTFOR_TEST_LISTEN"); mode != "" {
		os.Exit(listenMain(mode))
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
	if os.Getenv("PORTFOR_TEST_QUEUE") == "direct" {
		registry.Direct(reg)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	lease := os.Getenv("PORTFOR_TEST_MODE") == "lease"
	if os.Getenv("PORTFOR_TEST_MODE") == "each" {
		// All ids in one ForwardEach call; the latency is the call's.
		reqs := make([]registry.ForwardRequest, len(ids))
		for i, id := range ids {
			reqs[i] = registry.ForwardRequest{ID: id, Suggested: suggested}
		}
		start := time.Now()
		res, errs := reg.ForwardEach(context.Background(), reqs)
		if err := errors.Join(errs...); err != nil {
			fmt.Fprintln(out, "error:", err)
			return 1
		}
		for _, r := range res {
			fmt.Fprintln(out, r.Port, time.Since(start).Nanoseconds())
		}
		ids = nil
	}
	var listeners []net.Listener // kept, not collected (and closed) before the helper exits
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, id := range ids {
		start := time.Now()
		var port int
		var err error
		switch {
		case lease:
			var a registry.Assignment
			a, err = reg.Lease(context.Background(), registry.LeaseOptions{})
			port = a.Port
		case os.Getenv("PORTFOR_TEST_MODE") == "listen":
			var l net.Listener
			if l, err = reg.Listen(context.Background(), id, registry.ListenOptions{}); err == nil {
				port = l.Addr().(*net.TCPAddr).Port
				listeners = append(listeners, l)
			}
		default:
			port, err = reg.ForwardPort(context.Background(), id, suggested)
		}
		if err != nil {
			fmt.Fprintln(out, "error:", err)
			return 1
		}
		fmt.Fprintln(out, port, time.Since(start).Nanoseconds())
	}
	// Close stdout so the parent sees the end of the results, but stay
	// alive (our leases with us) until it closes stdin.
	out.Flush()
	os.Stdout.Close()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startHelpers starts one helper per job list and returns once all are ready.
// Each job is an id to forward (or, with PORTFOR_TEST_MODE=lease in extra
// env, one lease to take; with PORTFOR_TEST_MODE=listen, an id to Listen
// on, the listener kept open).
func startHelpers(tb testing.TB, db string, suggested int, jobs [][]string, extraEnv ...string) []*helper {
	tb.Helper()
	hs := make([]*helper, len(jobs))
	for i, ids := range jobs {
		env := append([]string{"PORTFOR_TEST_HELPER=1", "PORTFOR_TEST_DB=" + db,
			"PORTFOR_TEST_IDS=" + strings.Join(ids, " "), "PORTFOR_TEST_SUGGESTED=" + strconv.Itoa(suggested)}, extraEnv...)
		cmd, stdin, stdout := startTestProc(tb, nil, env...)
		hs[i] = &helper{cmd: cmd, stdin: stdin, stdout: stdout}
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
	}
	// Only now let them go: a helper that exits gives up its leases.
	for i, h := range hs {
		require.NoError(tb, h.stdin.Close())
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

func holdMain(n string) int {
	count, _ := strconv.Atoi(n)
	reg, err := registry.Open(os.Getenv("PORTFOR_TEST_DB"), registry.Options{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	var as []registry.Assignment
	if count > 0 {
		as, err = reg.LeaseN(context.Background(), count, registry.LeaseOptions{})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	for _, a := range as {
		fmt.Print(a.Port, " ")
	}
	fmt.Println()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// holder is a child process holding leases until released.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ports []int
}

// startHolder starts a child that leases n ports for itself.
func startHolder(tb testing.TB, db string, n int) *holder {
	tb.Helper()
	cmd, stdin, stdout := startTestProc(tb, nil, "PORTFOR_TEST_HOLD="+strconv.Itoa(n), "PORTFOR_TEST_DB="+db)
	h := &holder{cmd: cmd, stdin: stdin}
	line, err := stdout.ReadString('\n')
	require.NoError(tb, err)
	for _, f := range strings.Fields(line) {
		p, err := strconv.Atoi(f)
		require.NoError(tb, err, "holder said %q", line)
		h.ports = append(h.ports, p)
	}
	require.Len(tb, h.ports, n)
	return h
}

// exit ends the holder and waits until it is gone.
func (h *holder) exit(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, h.stdin.Close())
	require.NoError(tb, h.cmd.Wait())
}

// startTestProc starts argv (nil: this test binary, running no test) with
// env added to the environment and its stderr on ours, and kills it at the
// end of the test if it still runs. It returns its stdin and stdout.
func startTestProc(tb testing.TB, argv []string, env ...string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	tb.Helper()
	if argv == nil {
		argv = []string{os.Args[0], "-test.run=^$"}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=0"), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, stdin, bufio.NewReader(stdout)
}
