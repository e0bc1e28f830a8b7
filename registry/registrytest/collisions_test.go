package registrytest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/registry/registrytest"
)

// The collision harness: issue 13's proof that test binaries run at once
// never get the same port. Each round starts binaries (copies of this
// test binary) together, each running tests in parallel that get a port
// and bind it, the way `go test ./...` runs packages. A barrier across
// all of them (pipes to the parent, no sleeps) makes every test hold its
// port at the same moment:
//
//  1. every test gets its port ("have"), and waits;
//  2. when every binary has said "have", the parent says "bind": every
//     test binds 127.0.0.1:PORT and keeps it ("bound"), and waits;
//  3. when every binary has said "bound", the parent says "done": the
//     tests close their listeners and end, releasing their ports.
//
// The way ports are got is the mode: "leased" is registrytest.Port, on one
// registry shared by all the binaries (as the user's is); "naive" is the
// common bind-127.0.0.1:0, note the port, close, bind it again later.

const (
	collisionBinaries = 8
	collisionTests    = 50
	// collisionRoundsEnv sets the number of rounds; the default is
	// collisionRounds, one with -short.
	collisionRoundsEnv = "PORTFOR_COLLISION_ROUNDS"
	collisionRounds    = 2
)

// childReport is what a child binary prints at the end of a round.
type childReport struct {
	Ports      []int    `json:"ports"`
	AddrInUse  int      `json:"addr_in_use"`
	OtherFails []string `json:"other_fails,omitempty"`
	// Waits is how long each test waited for its port.
	Waits []time.Duration `json:"waits"`
}

// roundResult sums a round over all the binaries.
type roundResult struct {
	ports      int
	duplicates int // ports got by more than one test, counted once per extra test
	addrInUse  int
	otherFails []string
	waits      []time.Duration
}

func TestCollisionsLeased(t *testing.T) {
	runCollisionRounds(t, "leased", "registrytest.Port", func(r int, res roundResult) {
		if res.addrInUse != 0 || res.duplicates != 0 || len(res.otherFails) != 0 {
			t.Errorf("round %d: %d EADDRINUSE, %d duplicate ports, %d other failures %q", r, res.addrInUse, res.duplicates, len(res.otherFails), res.failures())
		}
		if res.ports != collisionBinaries*collisionTests {
			t.Errorf("round %d: %d ports, want %d", r, res.ports, collisionBinaries*collisionTests)
		}
	})
}

// TestCollisionsNaive measures the approach registrytest replaces: its
// collisions are no failure.
func TestCollisionsNaive(t *testing.T) {
	runCollisionRounds(t, "naive", "bind :0, close, bind again", func(r int, res roundResult) {
		if len(res.otherFails) != 0 {
			t.Errorf("round %d: %d failures other than EADDRINUSE: %q", r, len(res.otherFails), res.failures())
		}
	})
}

// runCollisionRounds runs the rounds in mode, has check judge each, and
// logs each and their sum.
func runCollisionRounds(t *testing.T, mode, how string, check func(round int, res roundResult)) {
	rounds := collisionRoundCount(t)
	var total roundResult
	for r := 1; r <= rounds; r++ {
		res := runCollisionRound(t, mode)
		t.Logf("%s, round %d: %d ports, %d EADDRINUSE, %d duplicate; %s", mode, r, res.ports, res.addrInUse, res.duplicates, res.waitSummary())
		check(r, res)
		total.add(res)
	}
	t.Logf("%s (%s): %d rounds x %d binaries x %d parallel tests: %d EADDRINUSE, %d duplicate ports; %s",
		mode, how, rounds, collisionBinaries, collisionTests, total.addrInUse, total.duplicates, total.waitSummary())
}

// failures lists the distinct other failures.
func (r *roundResult) failures() []string {
	return slices.Compact(slices.Sorted(slices.Values(r.otherFails)))
}

func (r *roundResult) add(o roundResult) {
	r.ports += o.ports
	r.duplicates += o.duplicates
	r.addrInUse += o.addrInUse
	r.otherFails = append(r.otherFails, o.otherFails...)
	r.waits = append(r.waits, o.waits...)
}

// waitSummary gives the median, 99th percentile and longest of the waits.
func (r *roundResult) waitSummary() string {
	if len(r.waits) == 0 {
		return "no waits"
	}
	w := slices.Sorted(slices.Values(r.waits))
	at := func(q float64) time.Duration {
		return w[min(len(w)-1, int(q*float64(len(w))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("wait for a port p50 %v, p99 %v, max %v", at(0.5), at(0.99), w[len(w)-1].Round(10*time.Microsecond))
}

func collisionRoundCount(t *testing.T) int {
	if s := os.Getenv(collisionRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("%s=%q: want 1 to 100", collisionRoundsEnv, s)
		}
		return n
	}
	if testing.Short() {
		return 1
	}
	return collisionRounds
}

// runCollisionRound runs one round of collisionBinaries children in mode.
func runCollisionRound(t *testing.T, mode string) roundResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	env := []string{
		registry.EnvDB + "=" + filepath.Join(dir, "registry.db"), // shared by the binaries, as the user's registry is
		"TMPDIR=" + dir,
	}
	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		lines  chan string
		stderr strings.Builder
		output tail // the rest of its stdout
	}
	children := make([]*child, collisionBinaries)
	for i := range children {
		c := &child{lines: make(chan string, 4)}
		c.cmd = childTest(ctx, "TestCollisionChild", "collide-"+mode, env, "-test.parallel="+strconv.Itoa(collisionTests))
		c.cmd.Stderr = &c.stderr
		var err error
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := c.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.cmd.Process.Kill(); _ = c.cmd.Wait() })
		go func() {
			defer close(c.lines)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), "harness: "); ok {
					c.lines <- line
				} else {
					c.output.add(sc.Text())
				}
			}
		}()
		children[i] = c
	}
	// expect reads the next harness line of every child.
	expect := func(want string) []string {
		got := make([]string, len(children))
		for i, c := range children {
			select {
			case line, ok := <-c.lines:
				if !ok || !strings.HasPrefix(line, want) {
					_ = c.cmd.Process.Kill()
					_ = c.cmd.Wait()
					t.Fatalf("child %d: want %q, got %q (closed: %v); output:\n%s\nstderr:\n%s", i, want, line, !ok, c.output.String(), c.stderr.String())
				}
				got[i] = line
			case <-ctx.Done():
				t.Fatalf("child %d: no %q: %v; output:\n%s", i, want, ctx.Err(), c.output.String())
			}
		}
		return got
	}
	say := func(what string) {
		for i, c := range children {
			if _, err := io.WriteString(c.stdin, what+"\n"); err != nil {
				t.Fatalf("child %d: %v", i, err)
			}
		}
	}
	expect("have")
	say("bind")
	expect("bound")
	say("done")
	reports := expect("report ")
	var res roundResult
	seen := map[int]int{}
	for i, line := range reports {
		var rep childReport
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "report ")), &rep); err != nil {
			t.Fatalf("child %d: %v in %q", i, err, line)
		}
		res.ports += len(rep.Ports)
		res.addrInUse += rep.AddrInUse
		res.otherFails = append(res.otherFails, rep.OtherFails...)
		res.waits = append(res.waits, rep.Waits...)
		for _, p := range rep.Ports {
			seen[p]++
		}
	}
	for _, n := range seen {
		res.duplicates += n - 1
	}
	for i, c := range children {
		c.stdin.Close()
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("child %d: %v; output:\n%s\nstderr:\n%s", i, err, c.output.String(), c.stderr.String())
		}
	}
	return res
}

// TestCollisionChild is one binary of a round (see runCollisionRound).
func TestCollisionChild(t *testing.T) {
	mode, ok := strings.CutPrefix(os.Getenv(childEnv), "collide-")
	if !ok {
		t.Skip("a child of TestCollisionsLeased and TestCollisionsNaive")
	}
	var get func(t *testing.T) (int, error)
	switch mode {
	case "leased":
		get = func(t *testing.T) (int, error) { return registrytest.Port(t), nil }
	case "naive":
		get = naivePort
	default:
		t.Fatalf("mode %q", mode)
	}
	var have, bound sync.WaitGroup
	have.Add(collisionTests)
	bound.Add(collisionTests)
	bind, done := make(chan struct{}), make(chan struct{})
	parent := bufio.NewScanner(os.Stdin)
	step := func(wg *sync.WaitGroup, tell, want string, then chan struct{}) {
		wg.Wait()
		fmt.Println("harness: " + tell)
		if !parent.Scan() || parent.Text() != want {
			fmt.Fprintf(os.Stderr, "the parent said %q (%v), not %q\n", parent.Text(), parent.Err(), want)
			os.Exit(2)
		}
		close(then)
	}
	go func() {
		step(&have, "have", "bind", bind)
		step(&bound, "bound", "done", done)
	}()

	var mu sync.Mutex
	var rep childReport
	t.Run("tests", func(t *testing.T) {
		for i := range collisionTests {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				var port int
				var l net.Listener
				err := errors.New("the test failed before it bound a port")
				stage := 0
				defer func() { // also when get fails the test: the others must not wait for it
					if stage < 1 {
						have.Done()
					}
					if stage < 2 {
						bound.Done()
					}
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						l.Close()
					case errors.Is(err, syscall.EADDRINUSE):
						rep.AddrInUse++
					default:
						rep.OtherFails = append(rep.OtherFails, err.Error())
					}
					if port != 0 {
						rep.Ports = append(rep.Ports, port)
					}
				}()
				start := time.Now()
				port, err = get(t)
				took := time.Since(start)
				mu.Lock()
				rep.Waits = append(rep.Waits, took)
				mu.Unlock()
				stage = 1
				have.Done()
				<-bind
				if err == nil {
					l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
				}
				stage = 2
				bound.Done()
				<-done
			})
		}
	})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("harness: report " + string(b))
}

// naivePort is the usual way to get a "free" port: bind port 0, note what
// the system chose, close.
func naivePort(*testing.T) (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last lines written to it.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lines = append(t.lines, line); len(t.lines) > 40 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
