package registry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/store"
)

// churnMain is a helper process that changes the registry as fast as it can
// until it is killed: it forwards new ids, releases some of them and leases
// ports for the lease owner given in PORTFOR_TEST_OWNER. It prints "begin
// OP ARG" before each operation and "ok OP ARG PORT" once the call has
// returned, so the parent knows what was acknowledged and what was in
// flight when the kill came.
func churnMain(name string) int {
	reg, err := registry.Open(os.Getenv("PORTFOR_TEST_DB"), registry.Options{LockTimeout: time.Minute})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	owner, _ := strconv.Atoi(os.Getenv("PORTFOR_TEST_OWNER"))
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	ctx := context.Background()
	var mine []string
	var deadline time.Time
	if d, err := time.ParseDuration(os.Getenv("PORTFOR_TEST_FOR")); err == nil {
		deadline = time.Now().Add(d) // soak mode: stop by itself and report the count
	}
	for n := 0; ; n++ {
		if !deadline.IsZero() && time.Now().After(deadline) {
			say("done %d", n)
			return 0
		}
		if !deadline.IsZero() && rand.IntN(10) < 3 { // soak mode also reads: get and list
			if rand.IntN(2) == 0 && len(mine) > 0 {
				if _, err := reg.Lookup(ctx, mine[rand.IntN(len(mine))]); err != nil {
					say("error: %v", err)
					return 1
				}
			} else if _, err := reg.List(ctx); err != nil {
				say("error: %v", err)
				return 1
			}
			continue
		}
		switch r := rand.IntN(10); {
		case r < 5 || len(mine) == 0:
			id := fmt.Sprintf("%s-%d", name, n)
			say("begin forward %s", id)
			port, err := reg.ForwardPort(ctx, id, 0)
			if err != nil {
				say("error: %v", err)
				return 1
			}
			say("ok forward %s %d", id, port)
			mine = append(mine, id)
		case r < 7:
			id := mine[0]
			mine = mine[1:]
			say("begin release %s", id)
			if _, err := reg.Release(ctx, id); err != nil {
				say("error: %v", err)
				return 1
			}
			say("ok release %s 0", id)
		default:
			say("begin lease -")
			a, err := reg.Lease(ctx, registry.LeaseOptions{OwnerPID: owner})
			if err != nil {
				say("error: %v", err)
				return 1
			}
			say("ok lease %s %d", a.ID, a.Port)
		}
	}
}

// TestCrashSafety kills churning helper processes with SIGKILL at random
// moments, two at a time, 200 times, then checks that the registry opens,
// bbolt's own check passes on both files, the indexes agree, and every
// change a helper acknowledged is there (a change in flight at the kill may
// or may not be).
func TestCrashSafety(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	reg := mustOpen(t)
	stable := map[string]int{} // acknowledged and not released
	released := map[string]bool{}
	leases := map[int]bool{}
	uncertain := map[string]bool{} // ids whose last operation was in flight
	type child struct {
		cmd   *exec.Cmd
		lines *bufio.Scanner
		first string // the first line, read before the kill timer starts
	}
	start := func(i int) *child {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "PORTFOR_TEST_DB="+reg.Path(),
			fmt.Sprintf("PORTFOR_TEST_CHURN=c%d", i), fmt.Sprintf("PORTFOR_TEST_OWNER=%d", os.Getpid()))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		c := &child{cmd: cmd, lines: bufio.NewScanner(stdout)}
		// Once it has started working (however slow the machine), not before.
		require.True(t, c.lines.Scan(), "helper %d said nothing", i)
		c.first = c.lines.Text()
		return c
	}
	// absorb reads a killed child's output and records what it acknowledged.
	absorb := func(c *child) {
		inFlight := ""
		lines := []string{c.first}
		for c.lines.Scan() {
			lines = append(lines, c.lines.Text())
		}
		for _, line := range lines {
			f := strings.Fields(line)
			require.GreaterOrEqual(t, len(f), 3, "helper said %q", line)
			require.NotEqual(t, "error:", f[0], "helper said %q", line)
			if f[0] == "begin" {
				inFlight = f[2]
				continue
			}
			port, err := strconv.Atoi(f[3])
			require.NoError(t, err)
			switch f[1] {
			case "forward":
				stable[f[2]] = port
			case "release":
				delete(stable, f[2])
				released[f[2]] = true
			case "lease":
				leases[port] = true
			}
			inFlight = ""
		}
		if inFlight != "" && inFlight != "-" {
			uncertain[inFlight] = true
		}
	}

	for i := 0; i < kills; i += 2 {
		a, b := start(i), start(i+1)
		// Let them work for a random moment, then kill both mid-stride.
		time.Sleep(time.Duration(5+rand.IntN(40)) * time.Millisecond) // the point of the test: a random kill time
		for _, c := range []*child{a, b} {
			require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
		}
		for _, c := range []*child{a, b} {
			absorb(c)
			err := c.cmd.Wait()
			require.Error(t, err, "the helper must have been killed, not have exited")
		}
	}

	// The registry opens and is consistent, in both files.
	for _, path := range []string{reg.Path(), reg.LeasePath()} {
		if _, err := os.Stat(path); os.IsNotExist(err) && path == reg.LeasePath() && len(leases) == 0 {
			continue // on a slow machine every helper may have been killed before its first lease
		}
		db, err := store.Open(path, store.Options{ReadOnly: true})
		require.NoError(t, err, path)
		require.NoError(t, db.View(func(tx *store.Tx) error { return tx.Check() }), path)
		require.NoError(t, db.Close())
	}
	list, err := reg.List(ctx)
	require.NoError(t, err)
	got := map[string]int{}
	ports := map[int]string{}
	for _, a := range list {
		got[a.ID] = a.Port
		prev, dup := ports[a.Port]
		require.False(t, dup, "port %d held by %s and %s", a.Port, prev, a.ID)
		ports[a.Port] = a.ID
	}
	lost := 0
	for id, port := range stable {
		if got[id] != port && !uncertain[id] {
			lost++
			t.Errorf("acknowledged %s=%d is missing (registry has %d)", id, port, got[id])
		}
	}
	for id := range released {
		if _, ok := got[id]; ok && !uncertain[id] {
			lost++
			t.Errorf("acknowledged release of %s is undone", id)
		}
	}
	for port := range leases {
		if ports[port] != fmt.Sprintf("lease:%d", port) {
			lost++
			t.Errorf("acknowledged lease of port %d is missing", port)
		}
	}
	assert.Zero(t, lost)
	t.Logf("%d kills survived; %d acknowledged assignments, %d releases, %d leases checked; %d in flight at a kill; %d acknowledged writes lost",
		kills, len(stable), len(released), len(leases), len(uncertain), lost)
}

// leaserMain is a helper process that takes n leases for itself, one at a
// time, printing each port once its call has returned, then "done", and
// stays alive (its leases with it) until its stdin closes.
func leaserMain(n string) int {
	count, _ := strconv.Atoi(n)
	reg, err := registry.Open(os.Getenv("PORTFOR_TEST_DB"), registry.Options{LockTimeout: time.Minute})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	for range count {
		a, err := reg.Lease(context.Background(), registry.LeaseOptions{})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println(a.Port)
	}
	fmt.Println("done")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestLeasesAreNeverCarriedOutTwice kills processes that hold the lock
// while other processes, which stay alive, take leases: a lease is carried
// out once whoever dies when, so every live owner holds exactly the leases
// it was told about (no phantom lease held for a live owner).
func TestLeasesAreNeverCarriedOutTwice(t *testing.T) {
	kills := 400
	if testing.Short() {
		kills = 100
	}
	reg := mustOpen(t)
	type leaser struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		acked map[int]bool
		done  chan error
	}
	var ls []*leaser
	for range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "PORTFOR_TEST_DB="+reg.Path(), "PORTFOR_TEST_LEASER=300")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		l := &leaser{cmd: cmd, stdin: stdin, acked: map[int]bool{}, done: make(chan error, 1)}
		t.Cleanup(func() { _ = l.cmd.Process.Kill(); _ = l.cmd.Wait() })
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "done" {
					l.done <- nil
					return
				}
				port, err := strconv.Atoi(sc.Text())
				if err != nil {
					l.done <- fmt.Errorf("leaser said %q", sc.Text())
					return
				}
				l.acked[port] = true
			}
			l.done <- fmt.Errorf("leaser ended early: %v", sc.Err())
		}()
		ls = append(ls, l)
	}
	// Meanwhile, churning processes take the lock (for new ids, releases
	// and leases) and are killed at random moments, many of them while
	// holding it: 8 run at any time, and one is killed every few ms.
	var churners []*exec.Cmd
	startChurner := func(i int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "PORTFOR_TEST_DB="+reg.Path(),
			fmt.Sprintf("PORTFOR_TEST_CHURN=k%d", i), fmt.Sprintf("PORTFOR_TEST_OWNER=%d", os.Getpid()))
		require.NoError(t, cmd.Start())
		return cmd
	}
	for i := range 8 {
		churners = append(churners, startChurner(i))
	}
	for i := range kills {
		time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond) // the point of the test: a random kill time
		j := rand.IntN(len(churners))
		require.NoError(t, churners[j].Process.Signal(syscall.SIGKILL))
		_ = churners[j].Wait()
		churners[j] = startChurner(8 + i)
	}
	for _, c := range churners {
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
	}
	for _, l := range ls {
		select {
		case err := <-l.done:
			require.NoError(t, err)
		case <-time.After(2 * time.Minute):
			t.Fatal("a leaser never finished")
		}
	}
	list, err := reg.List(ctx)
	require.NoError(t, err)
	held := map[int]map[int]bool{} // owner pid -> ports
	for _, a := range list {
		if a.Kind == registry.Lease {
			if held[a.OwnerPID] == nil {
				held[a.OwnerPID] = map[int]bool{}
			}
			held[a.OwnerPID][a.Port] = true
		}
	}
	phantoms := 0
	for _, l := range ls {
		mine := held[l.cmd.Process.Pid]
		for port := range mine {
			if !l.acked[port] {
				phantoms++
				t.Errorf("port %d is leased to live pid %d, which was never told about it", port, l.cmd.Process.Pid)
			}
		}
		assert.Len(t, mine, len(l.acked), "pid %d holds what it was told", l.cmd.Process.Pid)
		require.NoError(t, l.stdin.Close())
	}
	t.Logf("%d lock-taking processes killed; %d phantom leases", kills, phantoms)
}

// TestKilledCallersLeaveNothingBehind kills callers at random moments
// while they queue (some of them half way through writing their request):
// the next caller that runs a batch clears whatever they left, so the
// pending directory is empty again after one new name.
func TestKilledCallersLeaveNothingBehind(t *testing.T) {
	reg := mustOpen(t)
	_, err := reg.ForwardPort(ctx, "first", 0)
	require.NoError(t, err)
	pending := reg.Path() + ".pending"
	const rounds, callers = 6, 16
	for round := range rounds {
		held, err := lock.Acquire(ctx, reg.LockPath(), lock.Exclusive)
		require.NoError(t, err)
		jobs := make([][]string, callers)
		for i := range jobs {
			jobs[i] = []string{fmt.Sprintf("victim-%d-%d", round, i)}
		}
		hs := startHelpers(t, reg.Path(), 0, jobs)
		for _, h := range hs {
			_, err := io.WriteString(h.stdin, "go\n")
			require.NoError(t, err)
		}
		for _, h := range hs {
			// A random moment, from before the request is written to long after.
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // the point of the test: a random kill time
			require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL))
		}
		for _, h := range hs {
			_ = h.cmd.Wait()
		}
		require.NoError(t, held.Unlock())
	}
	left, _ := os.ReadDir(pending)
	t.Logf("%d files left by %d killed callers", len(left), rounds*callers)

	_, err = reg.ForwardPort(ctx, "after-the-storm", 0)
	require.NoError(t, err)
	entries, err := os.ReadDir(pending)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "what killed callers left is gone after one new name")
	list, err := reg.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 2, "no request of a killed caller was carried out")
}
