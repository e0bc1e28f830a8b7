package procinfo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The namespace tests re-run this test binary: as the init of a new pid
// namespace (nsRoleInit), which starts a second copy (nsRoleMember) so that
// the member is an ordinary process there, not its pid 1.
const (
	nsRoleEnv      = "PROCINFO_TEST_NS_ROLE"
	nsRoleInit     = "init"
	nsRoleMember   = "member"
	nsMountProcEnv = "PROCINFO_TEST_NS_MOUNT_PROC" // "1": the init mounts a /proc of its own
	nsParentEnv    = "PROCINFO_TEST_NS_PARENT"     // the test process's Identity, JSON
)

func TestMain(m *testing.M) {
	switch os.Getenv(nsRoleEnv) {
	case nsRoleInit:
		os.Exit(nsInit())
	case nsRoleMember:
		os.Exit(nsMember())
	case timeRole:
		os.Exit(timeMember())
	}
	os.Exit(m.Run())
}

// nsInit runs as pid 1 of the new namespace: it mounts /proc if asked,
// runs the member with its own stdin and stdout, says "gone" once the
// member has exited and been reaped, and exits when stdin closes.
func nsInit() int {
	if os.Getenv(nsMountProcEnv) == "1" {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fmt.Printf("skip: make mounts private: %v\n", err)
			return 0
		}
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			fmt.Printf("skip: mount a /proc for the namespace: %v\n", err)
			return 0
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nsRoleEnv+"="+nsRoleMember)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Printf("error: member: %v\n", err)
		return 1
	}
	fmt.Println("gone")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// nsReport is what the member tells the test.
type nsReport struct {
	Getpid      int      // os.Getpid(): its pid in its own namespace
	Self        Identity // Lookup(os.Getpid())
	SelfErr     string
	Init        Identity // Lookup(os.Getppid()): the namespace's init
	InitErr     string
	ParentAlive bool // Alive of the test process's identity
	ParentErr   string
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// nsMember reports, then waits for a line on stdin and exits.
func nsMember() int {
	var r nsReport
	var err error
	r.Getpid = os.Getpid()
	r.Self, err = Lookup(os.Getpid())
	r.SelfErr = errString(err)
	r.Init, err = Lookup(os.Getppid())
	r.InitErr = errString(err)
	var parent Identity
	if err := json.Unmarshal([]byte(os.Getenv(nsParentEnv)), &parent); err != nil {
		fmt.Printf("error: %s: %v\n", nsParentEnv, err)
		return 1
	}
	r.ParentAlive, err = Alive(parent)
	r.ParentErr = errString(err)
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// nsChild is a running new pid namespace: its init and, inside, the member.
type nsChild struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *os.File
	lines  *bufio.Reader
	report nsReport
}

// startNS starts a new pid namespace, with a /proc of its own if mountProc,
// and returns once the member has reported. It skips the test where the
// namespace cannot be made.
func startNS(t *testing.T, mountProc bool) *nsChild {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	parent, err := json.Marshal(me)
	require.NoError(t, err)

	flags := uintptr(syscall.CLONE_NEWPID)
	mount := "0"
	if mountProc {
		flags |= syscall.CLONE_NEWNS
		mount = "1"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nsRoleEnv+"="+nsRoleInit, nsMountProcEnv+"="+mount,
		nsParentEnv+"="+string(parent), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
			t.Skipf("cannot create a pid namespace here: %v", err)
		}
		require.NoError(t, err)
	}
	w.Close()
	c := &nsChild{t: t, cmd: cmd, stdin: stdin, out: r, lines: bufio.NewReader(r)}
	t.Cleanup(c.stop)
	line := c.line()
	if reason, ok := strings.CutPrefix(line, "skip: "); ok {
		t.Skip(reason)
	}
	require.NoError(t, json.Unmarshal([]byte(line), &c.report), "member said %q", line)
	return c
}

// line reads the next line the namespace writes, failing after a deadline.
func (c *nsChild) line() string {
	c.t.Helper()
	require.NoError(c.t, c.out.SetReadDeadline(time.Now().Add(30*time.Second)))
	s, err := c.lines.ReadString('\n')
	require.NoError(c.t, err, "reading from the namespace (got %q)", s)
	return strings.TrimSuffix(s, "\n")
}

// endMember makes the member exit and returns once its init has reaped it.
func (c *nsChild) endMember() {
	c.t.Helper()
	_, err := io.WriteString(c.stdin, "exit\n")
	require.NoError(c.t, err)
	require.Equal(c.t, "gone", c.line())
}

// stop ends the namespace and waits for its init.
func (c *nsChild) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(c.t, err, "the namespace's init")
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		c.t.Error("the namespace's init did not exit")
	}
	c.out.Close()
}

// A new pid namespace that still sees the parent's /proc: os.Getpid() there
// is not the process /proc/<that pid> shows. Lookup must give the member's
// pid as /proc numbers it, and the host must see it alive, then dead.
func TestPIDNamespaceSharingProc(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	c := startNS(t, false)
	r := c.report

	require.Empty(t, r.SelfErr)
	b, err := readProc(r.Self.PID, "status")
	require.NoError(t, err)
	nspid, err := parseNSpid(b)
	require.NoError(t, err)
	assert.Equal(t, []int{r.Self.PID, r.Getpid}, nspid, "its identity is numbered as /proc numbers it")
	ppid, err := Parent(r.Self.PID)
	require.NoError(t, err)
	assert.Equal(t, c.cmd.Process.Pid, ppid, "the identity is the member's: the init's child")
	seen, err := Lookup(r.Self.PID)
	require.NoError(t, err)
	assert.Equal(t, seen, r.Self, "the member sees itself as the host sees it")
	assert.Equal(t, me.NS, r.Self.NS, "its pid is numbered in /proc's namespace, the host's")

	require.Empty(t, r.InitErr, "Lookup of another pid of the namespace, resolved through NSpid")
	assert.Equal(t, c.cmd.Process.Pid, r.Init.PID)

	assert.True(t, r.ParentAlive, "the member sees the test process alive (%s)", r.ParentErr)
	alive, err := Alive(r.Self)
	require.NoError(t, err)
	assert.True(t, alive, "the host sees the member alive")

	c.endMember()
	alive, err = Alive(r.Self)
	require.NoError(t, err)
	assert.False(t, alive, "the host sees the member gone")
}

// A new pid namespace with a /proc of its own, as in a container: the
// member's identity is numbered in its namespace. The host resolves it
// through NSpid; the member cannot see the host's namespace and keeps the
// test process alive.
func TestPIDNamespaceWithOwnProc(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	c := startNS(t, true)
	r := c.report

	require.Empty(t, r.SelfErr)
	assert.Equal(t, r.Getpid, r.Self.PID, "its own /proc numbers it as it does")
	nsInit, err := nsOf(fmt.Sprintf("/proc/%d/ns/pid", c.cmd.Process.Pid))
	require.NoError(t, err)
	assert.Equal(t, nsInit, r.Self.NS, "the member's namespace is the new one")
	assert.NotEqual(t, me.NS, r.Self.NS)
	require.Empty(t, r.InitErr)
	assert.Equal(t, Identity{PID: 1, Start: r.Init.Start, NS: nsInit}, r.Init)

	assert.True(t, r.ParentAlive, "an owner in a namespace out of sight counts as alive (%s)", r.ParentErr)

	alive, err := Alive(r.Self)
	require.NoError(t, err)
	assert.True(t, alive, "the host finds the member through NSpid")
	// The member's pid in the host's namespace names another process (or
	// none): only the namespace's own numbering may answer for the member.
	if host, err := Lookup(r.Self.PID); err == nil {
		assert.NotEqual(t, host.Start, r.Self.Start)
	}
	alive, err = Alive(Identity{PID: r.Self.PID, Start: r.Self.Start - 1, NS: r.Self.NS})
	require.NoError(t, err)
	assert.False(t, alive, "the namespace's pid 2 started after the record: reused")
	alive, err = Alive(Identity{PID: 9999, Start: r.Self.Start, NS: r.Self.NS})
	require.NoError(t, err)
	assert.False(t, alive, "no pid 9999 in the namespace")

	c.endMember()
	alive, err = Alive(r.Self)
	require.NoError(t, err)
	assert.False(t, alive, "the namespace still runs (its init) and its pid 2 is gone")

	c.stop()
	alive, err = Alive(r.Self)
	require.NoError(t, err)
	if procNS() == initPIDNS && seesAll() {
		assert.False(t, alive, "from the initial namespace, which shows every process, a namespace without processes is gone")
	} else {
		assert.True(t, alive, "a namespace out of sight may be elsewhere: its owner counts as alive")
	}
}

func TestLookupFillsNamespace(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	ns, err := nsOf("/proc/self/ns/pid")
	require.NoError(t, err)
	assert.Equal(t, ns, me.NS)
	assert.Equal(t, ns, procNS())
	ok, err := Alive(Identity{PID: me.PID, Start: me.Start, NS: ns + 1})
	require.NoError(t, err)
	if procNS() == initPIDNS && seesAll() {
		assert.False(t, ok, "from the initial namespace: no process below it has that pid and start time")
	} else {
		assert.True(t, ok, "a namespace nobody here lives in cannot be judged unless it provably is gone")
	}
}

func TestParseNSpid(t *testing.T) {
	status := "Name:\tsh\nTgid:\t7\nPid:\t7\nNSpid:\t4242\t7\t2\nNSsid:\t1\n"
	got, err := parseNSpid([]byte(status))
	require.NoError(t, err)
	assert.Equal(t, []int{4242, 7, 2}, got)

	got, err = parseNSpid([]byte("Name:\tsh\nNSpid:\t5\n"))
	require.NoError(t, err)
	assert.Equal(t, []int{5}, got)

	got, err = parseNSpid([]byte("Name:\tsh\nPid:\t5")) // Linux < 4.1
	require.NoError(t, err)
	assert.Nil(t, got)

	for _, bad := range []string{"NSpid:\n", "NSpid:\t1\tx\n", "NSpid:\t0\n", "NSpid:\t-3\n"} {
		_, err := parseNSpid([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}

	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	got, err = parseNSpid(b)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	assert.Equal(t, os.Getpid(), got[len(got)-1], "the last NSpid is the pid in the process's own namespace")
}

func FuzzParseNSpid(f *testing.F) {
	f.Add([]byte("NSpid:\t4242\t7\t2\n"))
	f.Add([]byte("Pid:\t1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pids, err := parseNSpid(b)
		if err == nil {
			for _, p := range pids {
				if p <= 0 {
					t.Fatalf("pid %d", p)
				}
			}
		}
	})
}

func TestParseNSLink(t *testing.T) {
	n, err := parseNSLink("pid:[4026531836]")
	require.NoError(t, err)
	assert.Equal(t, uint64(initPIDNS), n)
	for _, bad := range []string{"", "net:[4026531836]", "pid:[]", "pid:[12", "pid:[0]", "pid:[x]"} {
		_, err := parseNSLink(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestJudge covers the decisions Alive makes for an identity from another
// namespace, on made-up scans of /proc.
func TestJudge(t *testing.T) {
	const host, ctr, other, nested = initPIDNS, 100, 200, 300
	starts := map[int]uint64{1: 1, 500: 50, 501: 51, 600: 60, 700: 70}
	start := func(pid int) (uint64, error) {
		s, ok := starts[pid]
		if !ok {
			return 0, ErrNoProcess
		}
		return s, nil
	}
	base := []procEntry{
		{pid: 1, nspid: []int{1}, ns: host},
		{pid: 500, nspid: []int{500, 1}, ns: ctr},       // the container's init
		{pid: 501, nspid: []int{501, 7}, ns: ctr},       // its pid 7
		{pid: 600, nspid: []int{600, 7}, ns: other},     // another container's pid 7
		{pid: 700, nspid: []int{700, 9, 1}, ns: nested}, // pid 9 of the container, in a namespace of its own
	}
	for _, tc := range []struct {
		name   string
		procs  []procEntry
		id     Identity
		procNS uint64
		want   bool
	}{
		{"in the container", base, Identity{PID: 7, Start: 51, NS: ctr}, host, true},
		{"pid reused in the container", base, Identity{PID: 7, Start: 99, NS: ctr}, host, false},
		{"other container's pid 7 is not it", base, Identity{PID: 7, Start: 60, NS: ctr}, host, false},
		{"no such pid in the container", base, Identity{PID: 8, Start: 51, NS: ctr}, host, false},
		{"start unknown", base, Identity{PID: 7, NS: ctr}, host, true},
		{"in a namespace nested in the container", base, Identity{PID: 9, Start: 70, NS: ctr}, host, true},
		{"exited since the scan", append(base, procEntry{pid: 800, nspid: []int{800, 3}, ns: ctr}), Identity{PID: 3, Start: 80, NS: ctr}, host, false},
		{"namespace gone, seen from the initial one", base, Identity{PID: 7, Start: 51, NS: 999}, host, false},
		{"namespace out of sight from a container", base, Identity{PID: 7, Start: 51, NS: 999}, ctr, true},
		{"namespace gone, but a process could not be placed", append(base, procEntry{pid: 900}), Identity{PID: 7, Start: 51, NS: 999}, host, true},
		{"unplaced process with the right start", append(base, procEntry{pid: 501, nspid: []int{501, 7}}), Identity{PID: 7, Start: 51, NS: ctr}, host, true},
	} {
		assert.Equal(t, tc.want, judge(tc.procs, tc.id, tc.procNS, start), tc.name)
	}
}

// TestJudgeFromInit covers the rule for an identity of another namespace
// seen from the initial one: the pid and start time, and the namespace
// where its link can be read.
func TestJudgeFromInit(t *testing.T) {
	starts := map[int]uint64{1: 1, 500: 50, 501: 51, 600: 50, 700: 70, 900: 90}
	start := func(pid int) (uint64, error) {
		s, ok := starts[pid]
		if !ok {
			return 0, ErrNoProcess
		}
		return s, nil
	}
	// The pid namespaces of each process, its own first, then each parent.
	namespaces := map[int][]uint64{1: {initPIDNS}, 7: {initPIDNS}, 500: {100}, 501: {100}, 600: {200}, 700: {300, 100}, 900: {400, 200}}
	nsAt := func(pid, up int) (uint64, error) {
		if ns, ok := namespaces[pid]; ok && up < len(ns) {
			return ns[up], nil
		}
		return 0, syscall.EACCES
	}
	unreadable := func(int, int) (uint64, error) { return 0, syscall.EACCES }
	exitedSince := func(int, int) (uint64, error) { return 0, syscall.ENOENT }
	base := []procEntry{
		{pid: 1, nspid: []int{1}},
		{pid: 7, nspid: []int{7}},            // the host's pid 7
		{pid: 500, nspid: []int{500, 1}},     // a container's init
		{pid: 501, nspid: []int{501, 7}},     // its pid 7
		{pid: 600, nspid: []int{600, 1}},     // another container's init, started in the same tick
		{pid: 700, nspid: []int{700, 9, 1}},  // the first one's pid 9, in a namespace nested in it
		{pid: 800, nspid: []int{800, 3}},     // exits before its start is read
		{pid: 900, nspid: []int{900, 7, 12}}, // pid 7 of another container, with a nested one
	}
	without500 := slices.DeleteFunc(slices.Clone(base), func(p procEntry) bool { return p.pid == 500 })
	for _, tc := range []struct {
		name  string
		procs []procEntry
		id    Identity
		nsAt  func(pid, up int) (uint64, error)
		want  bool
	}{
		{"pid 7 of a container", base, Identity{PID: 7, Start: 51, NS: 100}, nsAt, true},
		{"pid 7 of another container, started then", base, Identity{PID: 7, Start: 90, NS: 100}, nsAt, false},
		{"pid 7 of another container, namespaces unreadable", base, Identity{PID: 7, Start: 90, NS: 100}, unreadable, true},
		{"pid reused", base, Identity{PID: 7, Start: 99, NS: 100}, nsAt, false},
		{"the host's pid 7 does not count", []procEntry{{pid: 7, nspid: []int{7}}}, Identity{PID: 7, Start: 51, NS: 100}, nsAt, false},
		{"nested", base, Identity{PID: 9, Start: 70, NS: 100}, nsAt, true},
		{"nested in another container", base, Identity{PID: 9, Start: 70, NS: 200}, nsAt, false},
		{"gone", base, Identity{PID: 2, Start: 51, NS: 100}, nsAt, false},
		{"exited since the scan", base, Identity{PID: 3, Start: 80, NS: 100}, nsAt, false},
		{"exited before its namespace was read", base, Identity{PID: 7, Start: 51, NS: 100}, exitedSince, false},
		{"pids unreadable, start matches", append(slices.Clone(base), procEntry{pid: 501}), Identity{PID: 8, Start: 51, NS: 100}, nsAt, true},
		{"pids unreadable, start differs", append(slices.Clone(base), procEntry{pid: 501}), Identity{PID: 8, Start: 53, NS: 100}, nsAt, false},
		{"one init of two started in one tick", base, Identity{PID: 1, Start: 50, NS: 100}, nsAt, true},
		{"the other init", base, Identity{PID: 1, Start: 50, NS: 200}, nsAt, true},
		{"an init gone, its twin running", without500, Identity{PID: 1, Start: 50, NS: 100}, nsAt, false},
		{"an init gone, its twin's namespace unreadable", without500, Identity{PID: 1, Start: 50, NS: 100}, unreadable, true},
	} {
		assert.Equal(t, tc.want, judgeFromInit(tc.procs, tc.id, start, tc.nsAt), tc.name)
	}
}

// forgetScan empties the cache of the last scan of /proc, so that the
// next Alive of another namespace's identity scans again.
func forgetScan(t *testing.T) {
	scans.mu.Lock()
	scans.procs = nil
	scans.mu.Unlock()
}

// Two containers whose inits have the same pid (1), and a start time that
// matches: those started in one tick record that. Once the first is gone,
// its init's lease must end while the second runs, where the namespaces can
// be read; the record here is the first init's, with the second's start
// time (a real pair in one tick cannot be made on demand).
func TestAliveTellsTwinContainersApart(t *testing.T) {
	if procNS() != initPIDNS || !seesAll() {
		t.Skip("not in the initial pid namespace with every process in view: other containers are out of sight")
	}
	first, second := startNS(t, true), startNS(t, true)
	gone, twin := first.report.Init, second.report.Init
	require.Equal(t, 1, gone.PID)
	require.Equal(t, 1, twin.PID)
	require.NotEqual(t, gone.NS, twin.NS)
	if _, err := nsOf(fmt.Sprintf("/proc/%d/ns/pid", second.cmd.Process.Pid)); err != nil {
		t.Skipf("the second container's namespace cannot be read here (%v): its twin's leases are kept, as they were", err)
	}
	record := Identity{PID: 1, Start: twin.Start, NS: gone.NS}
	forgetScan(t)
	alive, err := Alive(gone)
	require.NoError(t, err)
	assert.True(t, alive, "the first container runs")

	first.stop()
	forgetScan(t)
	alive, err = Alive(record)
	require.NoError(t, err)
	assert.False(t, alive, "the first container is gone; the second's init is not its owner")
	alive, err = Alive(gone)
	require.NoError(t, err)
	assert.False(t, alive, "the first container's init, as recorded")
	alive, err = Alive(twin)
	require.NoError(t, err)
	assert.True(t, alive, "the second container runs")
}

// nsAbove reads a process's own pid namespace from its link and the
// namespaces above it through NS_GET_PARENT.
func TestNSAbove(t *testing.T) {
	c := startNS(t, true)
	initPID := c.cmd.Process.Pid // the container's init, as /proc numbers it
	ns, err := nsAbove(initPID, 0)
	require.NoError(t, err)
	assert.Equal(t, c.report.Init.NS, ns, "its own")
	ns, err = nsAbove(initPID, 1)
	if errors.Is(err, syscall.ENOTTY) {
		t.Skip("no NS_GET_PARENT (Linux < 4.9)")
	}
	require.NoError(t, err)
	assert.Equal(t, procNS(), ns, "the one it was made in: ours")
	_, err = nsAbove(initPID, 64)
	assert.Error(t, err, "more levels than there are")
	_, err = nsAbove(1<<22+1, 0) // above pid_max's limit: no such process
	assert.True(t, exited(err), "%v", err)
}

// A flood of identities naming namespaces that do not exist (queue files
// anyone can write) costs one scan of /proc, not one each.
func TestAliveOtherNamespacesShareAScan(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	if me.Start < 2*scanMarginTicks {
		t.Skip("the machine booted too recently")
	}
	before := scans.n.Load()
	for i := range 500 {
		old := Identity{PID: 1000 + i, Start: me.Start - scanMarginTicks - uint64(i%5), NS: me.NS + 1 + uint64(i)}
		_, err := Alive(old)
		require.NoError(t, err)
		future := Identity{PID: 1000 + i, Start: me.Start + 1<<40, NS: me.NS + 1 + uint64(i)}
		alive, err := Alive(future)
		require.NoError(t, err)
		if procNS() == initPIDNS && seesAll() {
			assert.False(t, alive, "no process started after now")
		}
	}
	// Every scan serves 100 ms of calls: a slow machine may need a few.
	assert.LessOrEqual(t, scans.n.Load()-before, int64(10), "scans of /proc for 1,000 identities")
}

// An owner that started after the cached scan must be found: the cache
// serves only identities older than the scan.
func TestAliveElsewhereSeesNewProcesses(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	_, err = Alive(Identity{PID: 4242, Start: 1, NS: me.NS + 1}) // fills the cache
	require.NoError(t, err)
	c := startNS(t, true)
	alive, err := Alive(c.report.Self)
	require.NoError(t, err)
	assert.True(t, alive, "a member started after the last scan")
}
