package registry_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/store"
)

// benchRegistry returns a handle on a fresh registry whose (empty) file
// already exists, so that the cost of creating it is not measured.
func benchRegistry(b *testing.B) *registry.Registry {
	b.Helper()
	path := filepath.Join(b.TempDir(), "state", "registry.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	reg, err := registry.Open(path, registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return reg
}

// benchPopulated returns a registry holding n stable entries, "svc-0000" …
// bound to 20000 … 20000+n-1, and the id→port map it holds.
func benchPopulated(b *testing.B, n int) (*registry.Registry, map[string]int) {
	b.Helper()
	reg := benchRegistry(b)
	want := make(map[string]int, n)
	for i := range n {
		id, port := fmt.Sprintf("svc-%04d", i), 20000+i
		if err := reg.Bind(ctx, id, port); err != nil {
			b.Fatal(err)
		}
		want[id] = port
	}
	return reg, want
}

// BenchmarkForwardPortExisting measures ForwardPort for an id that already
// holds a port: the read path (shared lock, read-only bbolt open, one Get,
// close). It never writes or probes the host.
func BenchmarkForwardPortExisting(b *testing.B) {
	reg := benchRegistry(b)
	want, err := reg.ForwardPort(ctx, "existing-service", 0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := reg.ForwardPort(ctx, "existing-service", 0)
		if err != nil {
			b.Fatal(err)
		}
		if got != want {
			b.Fatalf("ForwardPort returned %d, want %d", got, want)
		}
	}
}

// BenchmarkForwardPortNew measures ForwardPort for a new id with suggested 0:
// the read-path miss, then the exclusive lock, a read-write bbolt open (with
// freelist rebuild), the port search with host bind probes, and a committed
// (fdatasync'ed) Put. A fresh registry file is started, outside the timer,
// every 1000 ids so that neither the registry's size nor the port space
// drifts with b.N.
func BenchmarkForwardPortNew(b *testing.B) {
	const perRegistry = 1000
	var reg *registry.Registry
	var held map[int]string
	i := 0
	for b.Loop() {
		if i%perRegistry == 0 {
			b.StopTimer()
			reg, held = benchRegistry(b), make(map[int]string, perRegistry)
			b.StartTimer()
		}
		id := fmt.Sprintf("new-%d", i)
		i++
		port, err := reg.ForwardPort(ctx, id, 0)
		if err != nil {
			b.Fatal(err)
		}
		if port < registry.MinPort || port > 65535 || reg.IsEphemeral(port) {
			b.Fatalf("%s got unsuitable port %d", id, port)
		}
		if other, dup := held[port]; dup {
			b.Fatalf("port %d given to both %s and %s", port, other, id)
		}
		held[port] = id
	}
}

// BenchmarkLookup measures Lookup of one id in a registry of 1,000 entries
// (shared lock, read-only open, one Get and decode, close).
func BenchmarkLookup(b *testing.B) {
	reg, want := benchPopulated(b, 1000)
	const id = "svc-0500"
	for b.Loop() {
		a, err := reg.Lookup(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if a.ID != id || a.Port != want[id] {
			b.Fatalf("Lookup returned %s=%d, want %s=%d", a.ID, a.Port, id, want[id])
		}
	}
}

// BenchmarkList1000 measures List of a registry of 1,000 entries: the read
// path plus decoding every entry into a sorted slice.
func BenchmarkList1000(b *testing.B) {
	reg, want := benchPopulated(b, 1000)
	for b.Loop() {
		list, err := reg.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != len(want) {
			b.Fatalf("List returned %d entries, want %d", len(list), len(want))
		}
		for j, a := range list {
			if want[a.ID] != a.Port || (j > 0 && list[j-1].ID >= a.ID) {
				b.Fatalf("List entry %d is %s=%d (want port %d), or out of order", j, a.ID, a.Port, want[a.ID])
			}
		}
	}
}

// BenchmarkRelease measures Release alone (exclusive lock, read-write open,
// Delete from both indexes, fdatasync'ed commit, close) of an id in a small
// registry. Before each timed Release the id is put back with Bind, outside
// the timer, so each op releases a real assignment.
func BenchmarkRelease(b *testing.B) {
	reg := benchRegistry(b)
	const id, port = "released-service", 20000
	for b.Loop() {
		b.StopTimer()
		if err := reg.Bind(ctx, id, port); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		a, err := reg.Release(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if a.ID != id || a.Port != port {
			b.Fatalf("Release returned %s=%d, want %s=%d", a.ID, a.Port, id, port)
		}
	}
}

// BenchmarkProcesses16x50 measures contention between processes: 16 helper
// processes (the re-executed test binary, see helpers_test.go), started and
// ready before the clock starts, are told "go" at once and each forwards 50
// new ids (suggested 0) on one fresh registry. One op is one such round of
// 800 assignments, timed from the "go" to the last result read back. It
// reports assignments/s (800 per round over the measured time) and the p50
// and p99 of the per-call latencies the children measured, which include
// waiting for the lock.
//
// Sub-benchmarks: "queue" is the shipped path; "direct" turns the
// cross-process queue off, so every caller waits for the lock and carries
// out its own request alone: the difference is what the queue buys.
func BenchmarkProcesses16x50(b *testing.B) { benchQueueAndDirect(b, "forward") }

// BenchmarkLeaseProcesses16x50 is BenchmarkProcesses16x50 with leases: 16
// processes each take 50 leases at once ("assignments/s" counts leases).
func BenchmarkLeaseProcesses16x50(b *testing.B) { benchQueueAndDirect(b, "lease") }

func benchQueueAndDirect(b *testing.B, mode string) {
	for _, queue := range []string{"queue", "direct"} {
		b.Run(queue, func(b *testing.B) { benchProcesses(b, mode, queue) })
	}
}

func benchProcesses(b *testing.B, mode, queue string) {
	const procs, perProc = 16, 50
	var latencies []time.Duration
	var measured time.Duration
	round := 0
	for b.Loop() {
		b.StopTimer()
		reg := benchRegistry(b)
		jobs := make([][]string, procs)
		for p := range jobs {
			for j := range perProc {
				jobs[p] = append(jobs[p], fmt.Sprintf("r%d-p%02d-id%02d", round, p, j))
			}
		}
		hs := startHelpers(b, reg.Path(), 0, jobs, "PORTFOR_TEST_MODE="+mode, "PORTFOR_TEST_QUEUE="+queue)
		round++
		b.StartTimer()

		start := time.Now()
		results, last := collectHelpers(b, hs)
		measured += last.Sub(start)

		b.StopTimer()
		byPort := make(map[int]string, procs*perProc)
		for p, rs := range results {
			if len(rs) != perProc {
				b.Fatalf("helper %d returned %d results, want %d", p, len(rs), perProc)
			}
			for j, r := range rs {
				id := jobs[p][j]
				if other, dup := byPort[r.port]; dup {
					b.Fatalf("duplicate port %d: given to both %s and %s", r.port, other, id)
				}
				byPort[r.port] = id
				latencies = append(latencies, r.latency)
			}
		}
		list, err := reg.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if mode == "lease" {
			for i := range list {
				list[i].ID = byPort[list[i].Port] // leases are named by port: check the port set
			}
		}
		if len(list) != procs*perProc {
			b.Fatalf("registry holds %d entries, want %d", len(list), procs*perProc)
		}
		for _, a := range list {
			if byPort[a.Port] != a.ID {
				b.Fatalf("registry says %s=%d, a helper printed %q for that port", a.ID, a.Port, byPort[a.Port])
			}
		}
		b.StartTimer()
	}
	slices.Sort(latencies)
	pct := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(procs*perProc*round)/measured.Seconds(), "assignments/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// collectHelpers tells every helper "go" at once, reads their results
// concurrently and returns them with the time the last result line arrived
// (so that process exit is not counted).
func collectHelpers(b *testing.B, hs []*helper) ([][]result, time.Time) {
	b.Helper()
	for _, h := range hs {
		if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
			b.Fatal(err)
		}
	}
	out := make([][]result, len(hs))
	lastAt := make([]time.Time, len(hs))
	errs := make([]error, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			sc := bufio.NewScanner(h.stdout)
			for sc.Scan() {
				lastAt[i] = time.Now()
				var r result
				var ns int64
				if _, err := fmt.Sscan(sc.Text(), &r.port, &ns); err != nil || strings.HasPrefix(sc.Text(), "error") {
					errs[i] = fmt.Errorf("helper %d said %q", i, sc.Text())
					return
				}
				r.latency = time.Duration(ns)
				out[i] = append(out[i], r)
			}
			errs[i] = sc.Err()
		})
	}
	wg.Wait()
	var last time.Time
	for i, h := range hs {
		if errs[i] != nil {
			b.Fatal(errs[i])
		}
		_ = h.stdin.Close()
		if err := h.cmd.Wait(); err != nil {
			b.Fatalf("helper %d: %v", i, err)
		}
		if lastAt[i].After(last) {
			last = lastAt[i]
		}
	}
	return out, last
}

// BenchmarkLease measures one lease at a time in one process: lock, open
// both files, pick and probe a port (TCP and UDP), commit the lease file
// (not synced: see session.go), close.
func BenchmarkLease(b *testing.B) {
	reg := benchRegistry(b)
	seen := map[int]bool{}
	n := 0
	for b.Loop() {
		if n++; n%5000 == 0 { // keep the registry from filling up
			b.StopTimer()
			if _, err := reg.Reclaim(ctx); err != nil {
				b.Fatal(err)
			}
			for p := range seen {
				if _, err := reg.ReleasePort(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			clear(seen)
			b.StartTimer()
		}
		a, err := reg.Lease(ctx, registry.LeaseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if seen[a.Port] {
			b.Fatalf("port %d leased twice", a.Port)
		}
		seen[a.Port] = true
	}
}

// BenchmarkDoctor10000 checks a registry of 8,000 names and 2,000 live
// leases: one op is one whole Doctor run (no repairs needed). It reports
// how long Doctor held the registry's lock (lock-ms), the time others may
// have waited for it.
func BenchmarkDoctor10000(b *testing.B) {
	reg, _ := benchPopulated(b, 8000)
	me, err := procinfo.Lookup(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	leases, err := store.Open(reg.LeasePath(), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	err = leases.Update(func(tx *store.Tx) error {
		for i := range 2000 {
			port := 40000 + i
			e := store.Entry{ID: fmt.Sprintf("lease:%d", port), Port: port, Kind: store.Lease, Created: time.Now(), Updated: time.Now(),
				OwnerPID: me.PID, OwnerStart: me.Start, OwnerNS: me.NS}
			if err := tx.Put(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := leases.Close(); err != nil {
		b.Fatal(err)
	}
	var locked time.Duration
	for b.Loop() {
		rep, err := reg.Doctor(ctx, registry.DoctorOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Problems() != 0 {
			b.Fatalf("problems in a healthy registry: %v", rep.Findings)
		}
		locked += rep.Locked
	}
	b.ReportMetric(float64(locked.Microseconds())/1000/float64(b.N), "lock-ms")
}

// BenchmarkWorktreeScope measures what `--scope auto` adds to a call:
// finding the .git file of a linked worktree from a directory three levels
// below its top, reading it, and hashing the path. (A worktree laid out as
// git lays one out; git itself is not needed.)
func BenchmarkWorktreeScope(b *testing.B) {
	root := b.TempDir()
	admin := filepath.Join(root, "repo", ".git", "worktrees", "feature-x")
	wt := filepath.Join(root, "feature-x")
	deep := filepath.Join(wt, "src", "pkg", "sub")
	for _, d := range []string{admin, deep} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: "+admin+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := registry.WorktreeScope(deep)
		if err != nil || s == "" {
			b.Fatal(s, err)
		}
	}
}

// BenchmarkWho is `portfor who PORT` in process: one port held by one
// listener of this process, in a registry of 100 names.
func BenchmarkWho(b *testing.B) {
	reg, ports := benchPopulated(b, 100)
	l := benchListen(b, ports["svc-0042"])
	defer l.Close()
	b.ResetTimer()
	for b.Loop() {
		hs, err := reg.Who(ctx, ports["svc-0042"])
		if err != nil || len(hs) != 1 {
			b.Fatal(hs, err)
		}
	}
}

// BenchmarkWho100 is what `portfor list` asks: the holders of a registry's
// 100 ports, every one of them listened on.
func BenchmarkWho100(b *testing.B) {
	reg, ports := benchPopulated(b, 100)
	all := make([]int, 0, len(ports))
	for _, p := range ports {
		l := benchListen(b, p)
		defer l.Close()
		all = append(all, p)
	}
	b.ResetTimer()
	for b.Loop() {
		hs, err := reg.Who(ctx, all...)
		if err != nil || len(hs) != 100 {
			b.Fatal(len(hs), err)
		}
	}
}

func benchListen(b *testing.B, port int) io.Closer {
	b.Helper()
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		b.Skip("port of the benchmark registry taken here:", err)
	}
	return l
}

// BenchmarkListenKnown measures Listen on a known name, then Close: the
// shared lock, the registry file's header (the name's port was read in
// that state already), and the bind, made under that lock.
// BenchmarkNetListen is the same bind and Close with no registry: the
// difference is what Listen adds (issue 13: at most 0.1 ms).
// BenchmarkListenKnownUncached is the first Listen of the name in a
// handle: the header, then a read-only open and one Get.
func BenchmarkListenKnown(b *testing.B) { benchListenKnown(b, false) }

func BenchmarkListenKnownUncached(b *testing.B) { benchListenKnown(b, true) }

// benchListenName is the name the Listen benchmarks bind: one that no
// test binds, so that its port (derived from the name, the same in every
// fresh registry) is not held by a test running beside them.
const benchListenName = "bench-listen-known"

// listenKnown is a registry holding benchListenName, and its port.
func listenKnown(b *testing.B) (*registry.Registry, int) {
	reg := benchRegistry(b)
	port, err := reg.ForwardPort(ctx, benchListenName, 0)
	if err != nil {
		b.Fatal(err)
	}
	return reg, port
}

func benchListenKnown(b *testing.B, uncached bool) {
	reg, port := listenKnown(b)
	for b.Loop() {
		if uncached {
			registry.ForgetKnownPorts(reg)
		}
		listenOnce(b, reg, port)
	}
}

// listenOnce is one Listen of benchListenName on port, and Close.
func listenOnce(b *testing.B, reg *registry.Registry, port int) {
	l, err := reg.Listen(ctx, benchListenName, registry.ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if l.Addr().(*net.TCPAddr).Port != port {
		b.Fatalf("Listen bound %s, want port %d", l.Addr(), port)
	}
	l.Close()
}

// BenchmarkNetListen is the floor of BenchmarkListenKnown: net.Listen on
// 127.0.0.1 and the same port, and Close.
func BenchmarkNetListen(b *testing.B) {
	_, port := listenKnown(b)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for b.Loop() {
		netListenOnce(b, addr)
	}
}

func netListenOnce(b *testing.B, addr string) {
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	l.Close()
}

// BenchmarkListenKnownPaired does one of each, Listen of a known name and
// net.Listen, in every iteration (in turn first), and reports the median
// of each and of their differences: on a busy machine the two figures of
// one pair see the same load, where two benchmarks run one after the
// other may not. Uncached is the first Listen of the name in a handle.
func BenchmarkListenKnownPaired(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchListenKnownPaired(b, false) })
	b.Run("uncached", func(b *testing.B) { benchListenKnownPaired(b, true) })
}

func benchListenKnownPaired(b *testing.B, uncached bool) {
	reg, port := listenKnown(b)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var listen, plain, diff []time.Duration
	i := 0
	for b.Loop() {
		if uncached {
			registry.ForgetKnownPorts(reg)
		}
		t0 := time.Now()
		if i%2 == 0 {
			listenOnce(b, reg, port)
		} else {
			netListenOnce(b, addr)
		}
		t1 := time.Now()
		if i%2 == 0 {
			netListenOnce(b, addr)
		} else {
			listenOnce(b, reg, port)
		}
		t2 := time.Now()
		l, n := t1.Sub(t0), t2.Sub(t1)
		if i%2 == 1 {
			l, n = n, l
		}
		listen, plain, diff = append(listen, l), append(plain, n), append(diff, l-n)
		i++
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Nanoseconds())
	}
	b.ReportMetric(median(listen), "listen-ns")
	b.ReportMetric(median(plain), "net-ns")
	b.ReportMetric(median(diff), "added-ns")
}
