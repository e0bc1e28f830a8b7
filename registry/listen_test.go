package registry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry"
)

// listenMain is the test binary as a child process of the Listen tests
// (PORTFOR_TEST_LISTEN=MODE, PORTFOR_TEST_DB=PATH):
//
//   - stranger: binds PORTFOR_TEST_PORT on 127.0.0.1, TCP and UDP, with
//     plain net calls, prints "ready" and holds it until stdin closes;
//   - lease: ListenLease, prints the port and holds it until stdin closes;
//   - handed: run by `portfor run --listen listen-web listen-api`, see handedMain.
func listenMain(mode string) int {
	reg, err := registry.Open(os.Getenv("PORTFOR_TEST_DB"), registry.Options{LockTimeout: time.Minute})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx := context.Background()
	switch mode {
	case "stranger":
		addr := "127.0.0.1:" + os.Getenv("PORTFOR_TEST_PORT")
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer l.Close()
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer c.Close()
		fmt.Println("ready")
	case "lease":
		l, err := reg.ListenLease(ctx, registry.ListenOptions{})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer l.Close()
		fmt.Println(tcpPort(l))
	case "handed":
		return handedMain(reg)
	case "own":
		// Started with LISTEN_PID set to its own pid and LISTEN_FDS
		// promising 4 sockets that were never passed: its own socket,
		// opened now at one of those numbers, is not a handed-over one.
		own, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer own.Close()
		c, err := reg.ListenPacket(ctx, "listen-own", registry.ListenOptions{})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer c.Close()
		if _, err := own.WriteTo([]byte("x"), own.LocalAddr()); err != nil {
			fmt.Println("error: its own socket was closed:", err)
			return 1
		}
		fmt.Println(udpPort(c) == udpPort(own), udpPort(c))
	case "malformed":
		return malformedMain(reg)
	default:
		fmt.Println("error: unknown mode", mode)
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// child is a running listenMain: a helper that has said its first line.
type child struct {
	helper
	first string
}

// startChild starts argv (nil: the test binary) with the given
// environment added and reads its first line.
func startChild(t *testing.T, argv []string, env ...string) *child {
	t.Helper()
	cmd, stdin, stdout := startTestProc(t, argv, env...)
	c := &child{helper: helper{cmd: cmd, stdin: stdin, stdout: stdout}}
	c.first = c.line(t)
	require.NotContains(t, c.first, "error:")
	return c
}

// line reads the child's next line.
func (c *child) line(t *testing.T) string {
	t.Helper()
	s, err := c.stdout.ReadString('\n')
	require.NoError(t, err, "child said %q", s)
	return strings.TrimSuffix(s, "\n")
}

func tcpPort(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

func udpPort(c net.PacketConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// portOf returns name's port in reg.
func portOf(t *testing.T, reg *registry.Registry, name string) int {
	t.Helper()
	a, err := reg.Lookup(ctx, name)
	require.NoError(t, err)
	return a.Port
}

// accepts checks that l takes a connection and that bytes go through it.
func accepts(t *testing.T, l net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, err = io.WriteString(c, "hi\n")
			c.Close()
		}
		done <- err
	}()
	a := l.Addr().(*net.TCPAddr)
	addr := net.JoinHostPort(registry.ClientHost(a.IP.String()), strconv.Itoa(a.Port)) // 0.0.0.0 and :: are no destinations
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "hi\n", line)
	require.NoError(t, <-done)
}

func TestListenNewNameKeepsItsPort(t *testing.T) {
	reg := mustOpen(t)
	l, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	port := tcpPort(l)
	assert.Equal(t, portOf(t, reg, "listen-web"), port, "the listener is on the port the name now holds")
	assert.Equal(t, "127.0.0.1", l.Addr().(*net.TCPAddr).IP.String())
	accepts(t, l)
	require.NoError(t, l.Close())

	// Known now: the same port, from this handle and from another one.
	other, err := registry.Open(reg.Path(), registry.Options{})
	require.NoError(t, err)
	for _, h := range []*registry.Registry{reg, other} {
		l, err := h.Listen(ctx, "listen-web", registry.ListenOptions{Suggested: port%60000 + 1025})
		require.NoError(t, err)
		assert.Equal(t, port, tcpPort(l), "a known name keeps its port whatever Suggested says")
		accepts(t, l)
		require.NoError(t, l.Close())
	}
	fp, err := reg.ForwardPort(ctx, "listen-web", 0)
	require.NoError(t, err)
	assert.Equal(t, port, fp)
}

// TestListenFollowsTheRegistry: a handle that has bound a name's port
// binds the new one after another handle (or process) moved or released
// the name.
func TestListenFollowsTheRegistry(t *testing.T) {
	reg := mustOpen(t)
	other, err := registry.Open(reg.Path(), registry.Options{})
	require.NoError(t, err)
	l, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	to, err := registry.FindAvailableLocal()
	require.NoError(t, err)
	_, err = other.Move(ctx, "listen-web", to)
	require.NoError(t, err)
	l, err = reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	assert.Equal(t, to, tcpPort(l), "moved")
	require.NoError(t, l.Close())
	_, err = other.Release(ctx, "listen-web")
	require.NoError(t, err)
	l, err = reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	defer l.Close()
	assert.Equal(t, portOf(t, reg, "listen-web"), tcpPort(l), "released, then assigned anew")
}

func TestListenSuggested(t *testing.T) {
	reg := mustOpen(t)
	want, err := registry.FindAvailableLocal()
	require.NoError(t, err)
	l, err := reg.Listen(ctx, "listen-api", registry.ListenOptions{Suggested: want})
	if err == nil && tcpPort(l) != want {
		t.Skipf("port %d was taken by someone else meanwhile", want) // FindAvailableLocal records nothing
	}
	require.NoError(t, err)
	defer l.Close()
	assert.Equal(t, want, portOf(t, reg, "listen-api"))

	_, err = reg.Listen(ctx, "listen-bad", registry.ListenOptions{Suggested: 70000})
	assert.ErrorIs(t, err, registry.ErrInvalidPort)
	assert.ErrorContains(t, err, `listen "listen-bad": `)
	_, err = reg.Listen(ctx, "listen-bad", registry.ListenOptions{Ports: registry.PortList{{First: 15000, Last: 15010}}})
	assert.ErrorContains(t, err, `listen "listen-bad": ListenOptions.Ports is for ListenLease`)
	_, err = reg.Listen(ctx, "bad name", registry.ListenOptions{})
	assert.ErrorIs(t, err, registry.ErrInvalidID)
	_, err = reg.Lookup(ctx, "listen-bad")
	assert.ErrorIs(t, err, registry.ErrNotFound, "a refused Listen assigns nothing")
}

func TestListenPacket(t *testing.T) {
	reg := mustOpen(t)
	c, err := reg.ListenPacket(ctx, "listen-dns", registry.ListenOptions{})
	require.NoError(t, err)
	defer c.Close()
	port := udpPort(c)
	assert.Equal(t, portOf(t, reg, "listen-dns"), port)

	// A datagram comes through, and the TCP port of the name is free to
	// Listen on too: one name, one port, both protocols.
	client, err := net.Dial("udp", c.LocalAddr().String())
	require.NoError(t, err)
	defer client.Close()
	_, err = client.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 16)
	n, _, err := c.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf[:n]))
	l, err := reg.Listen(ctx, "listen-dns", registry.ListenOptions{})
	require.NoError(t, err)
	assert.Equal(t, port, tcpPort(l))
	require.NoError(t, l.Close())

	// Known now: the fast path binds UDP the same way.
	require.NoError(t, c.Close())
	c, err = reg.ListenPacket(ctx, "listen-dns", registry.ListenOptions{})
	require.NoError(t, err)
	assert.Equal(t, port, udpPort(c))
}

func TestListenAddress(t *testing.T) {
	reg := mustOpen(t)
	l, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	port := tcpPort(l)
	require.NoError(t, l.Close())
	tests := []struct{ address, ip string }{
		{"", "127.0.0.1"},
		{"localhost", "127.0.0.1"},
		{"LocalHost", "127.0.0.1"},
		{"127.0.0.1", "127.0.0.1"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
		{"0.0.0.0", "0.0.0.0"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"::", "::"},
	}
	v6 := hasIPv6()
	for _, tt := range tests {
		if strings.Contains(tt.ip, ":") && !v6 {
			t.Logf("%q: no IPv6 loopback here, skipped", tt.address)
			continue
		}
		l, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{Address: tt.address})
		require.NoError(t, err, "%q", tt.address)
		a := l.Addr().(*net.TCPAddr)
		assert.Equal(t, port, a.Port, "%q", tt.address)
		assert.Equal(t, tt.ip, a.IP.String(), "%q", tt.address)
		accepts(t, l)
		require.NoError(t, l.Close())
	}
	for _, bad := range []string{"example.com", "127.0.0.1:80", "1.2.3", "[127.0.0.1]", "[::1", "::1]", "[[::1]]", " 127.0.0.1"} {
		_, err := reg.Listen(ctx, "listen-new", registry.ListenOptions{Address: bad})
		require.ErrorIs(t, err, registry.ErrInvalidAddress, "%q", bad)
		assert.ErrorContains(t, err, fmt.Sprintf(`listen "listen-new": invalid address %q: want an IP address`, bad))
		_, err = reg.ListenLease(ctx, registry.ListenOptions{Address: bad})
		assert.ErrorIs(t, err, registry.ErrInvalidAddress, "%q", bad)
	}
	// An address that is not this host's: the bind fails, and a new name
	// is not assigned (TEST-NET-1, never a local address; nothing is sent).
	_, err = reg.Listen(ctx, "listen-new", registry.ListenOptions{Address: "192.0.2.1"})
	require.Error(t, err)
	assert.NotErrorIs(t, err, registry.ErrPortInUse)
	_, err = reg.Lookup(ctx, "listen-new")
	assert.ErrorIs(t, err, registry.ErrNotFound)
}

// TestListenKnownNameTakesNoWriteLock: a known name is looked up and bound
// under the shared lock, which readers hold together, while a new name
// needs the exclusive one.
func TestListenKnownNameTakesNoWriteLock(t *testing.T) {
	reg := mustOpen(t)
	port, err := reg.ForwardPort(ctx, "listen-web", 0)
	require.NoError(t, err)
	shared, err := lock.Acquire(ctx, reg.LockPath(), lock.Shared)
	require.NoError(t, err)
	defer shared.Unlock()
	l, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	assert.Equal(t, port, tcpPort(l))
	require.NoError(t, l.Close())

	impatient, err := registry.Open(reg.Path(), registry.Options{LockTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = impatient.Listen(ctx, "listen-new", registry.ListenOptions{})
	assert.ErrorIs(t, err, registry.ErrLocked, "a new name waits for the exclusive lock")
}

// TestListenConcurrentNewNames: goroutines and processes Listen on new
// names at once; every name gets a port of its own and every bind works.
func TestListenConcurrentNewNames(t *testing.T) {
	reg := mustOpen(t)
	other, err := registry.Open(reg.Path(), registry.Options{})
	require.NoError(t, err)
	const goroutines, procs, perProc = 12, 3, 4
	var jobs [][]string
	for p := range procs {
		var ids []string
		for i := range perProc {
			ids = append(ids, fmt.Sprintf("proc%d-%d", p, i))
		}
		jobs = append(jobs, ids)
	}
	hs := startHelpers(t, reg.Path(), 0, jobs, "PORTFOR_TEST_MODE=listen")

	ports := make([]int, goroutines)
	errs := make([]error, goroutines)
	listeners := make([]net.Listener, goroutines)
	defer func() {
		for _, l := range listeners {
			if l != nil {
				l.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := reg
			if i%2 == 1 {
				h = other
			}
			<-start
			l, err := h.Listen(ctx, fmt.Sprintf("g%d", i), registry.ListenOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			ports[i], listeners[i] = tcpPort(l), l
		}()
	}
	close(start)
	results := runHelpersConcurrently(t, hs, wg.Wait)
	require.NoError(t, errors.Join(errs...))

	seen := map[int]string{}
	check := func(name string, port int) {
		assert.Equal(t, portOf(t, reg, name), port, name)
		if prev, dup := seen[port]; dup {
			t.Errorf("port %d went to %s and %s", port, prev, name)
		}
		seen[port] = name
	}
	for i, p := range ports {
		check(fmt.Sprintf("g%d", i), p)
	}
	for p, rs := range results {
		require.Len(t, rs, perProc)
		for i, r := range rs {
			check(jobs[p][i], r.port)
		}
	}
	assert.Len(t, seen, goroutines+procs*perProc)
}

// runHelpersConcurrently is runHelpers while also running also.
func runHelpersConcurrently(t *testing.T, hs []*helper, also func()) [][]result {
	done := make(chan struct{})
	go func() {
		also()
		close(done)
	}()
	results := runHelpers(t, hs)
	<-done
	return results
}

// TestListenStranger: a port held by a process that is no portfor user is
// an ErrPortInUse that says who holds it; a new name asking for it gets
// another.
func TestListenStranger(t *testing.T) {
	reg := mustOpen(t)
	port, err := reg.ForwardPort(ctx, "listen-web", 0)
	require.NoError(t, err)
	s := startChild(t, nil, "PORTFOR_TEST_LISTEN=stranger", "PORTFOR_TEST_DB="+reg.Path(), "PORTFOR_TEST_PORT="+strconv.Itoa(port))
	require.Equal(t, "ready", s.first)
	pid := s.cmd.Process.Pid

	_, err = reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.ErrorIs(t, err, registry.ErrPortInUse)
	var pe *registry.PortInUseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, port, pe.Addr.Port)
	assert.Equal(t, "tcp", pe.Proto)
	assert.NotContains(t, err.Error(), "\n")
	_, perr := reg.ListenPacket(ctx, "listen-web", registry.ListenOptions{})
	require.ErrorIs(t, perr, registry.ErrPortInUse)
	if whoWorks(t, reg) {
		assert.Contains(t, err.Error(), fmt.Sprintf(`listen "listen-web": port %d: in use by `, port))
		assert.Contains(t, err.Error(), fmt.Sprintf("(pid %d) in ", pid))
		require.NotEmpty(t, pe.Holders)
		assert.Equal(t, pid, pe.Holders[0].Procs[0].PID)
		assert.Contains(t, perr.Error(), fmt.Sprintf(`listen "listen-web": udp port %d: in use by `, port))
		assert.Contains(t, perr.Error(), fmt.Sprintf("(pid %d)", pid))
	}
	assert.Equal(t, port, portOf(t, reg, "listen-web"), "a known name keeps its port when a stranger holds it")

	// A new name that asks for the stranger's port gets another.
	l, err := reg.Listen(ctx, "listen-api", registry.ListenOptions{Suggested: port})
	require.NoError(t, err)
	defer l.Close()
	assert.NotEqual(t, port, tcpPort(l))
	assert.Equal(t, portOf(t, reg, "listen-api"), tcpPort(l))

	// Gone, the port is ours again.
	require.NoError(t, s.stdin.Close())
	require.NoError(t, s.cmd.Wait())
	l2, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	assert.Equal(t, port, tcpPort(l2))
	require.NoError(t, l2.Close())
}

// whoWorks reports whether the system shows who holds a port here.
func whoWorks(t *testing.T, reg *registry.Registry) bool {
	_, err := reg.Who(ctx, 1)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Logf("Who is not supported on %s: holders not checked", runtime.GOOS)
		return false
	}
	require.NoError(t, err)
	return true
}

// TestListenSecondListenerOfAName: the second Listen of a name whose first
// listener is open fails, naming this process.
func TestListenSecondListenerOfAName(t *testing.T) {
	reg := mustOpen(t)
	l, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.NoError(t, err)
	defer l.Close()
	_, err = reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	require.ErrorIs(t, err, registry.ErrPortInUse)
	if whoWorks(t, reg) {
		assert.Contains(t, err.Error(), fmt.Sprintf("(pid %d)", os.Getpid()))
	}
}

// leaseOn returns the lease on port in reg's list, if any.
func leaseOn(t *testing.T, reg *registry.Registry, port int) (registry.Assignment, bool) {
	t.Helper()
	list, err := reg.List(ctx)
	require.NoError(t, err)
	i := slices.IndexFunc(list, func(a registry.Assignment) bool { return a.Kind == registry.Lease && a.Port == port })
	if i < 0 {
		return registry.Assignment{}, false
	}
	return list[i], true
}

func TestListenLeaseCloseReleases(t *testing.T) {
	reg := mustOpen(t)
	ports := registry.PortList{{First: 15000, Last: 15999}}
	l, err := reg.ListenLease(ctx, registry.ListenOptions{Ports: ports})
	require.NoError(t, err)
	port := tcpPort(l)
	assert.True(t, ports.Contains(port))
	a, ok := leaseOn(t, reg, port)
	require.True(t, ok, "leased")
	assert.Equal(t, os.Getpid(), a.OwnerPID)
	accepts(t, l)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "a second Close returns what the first did")
	_, ok = leaseOn(t, reg, port)
	assert.False(t, ok, "Close released the lease")
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)

	// UDP, near a port.
	c, err := reg.ListenPacketLease(ctx, registry.ListenOptions{Suggested: 15500, Ports: ports, Address: "0.0.0.0"})
	require.NoError(t, err)
	port = udpPort(c)
	assert.True(t, ports.Contains(port))
	assert.Equal(t, "0.0.0.0", c.LocalAddr().(*net.UDPAddr).IP.String())
	_, ok = leaseOn(t, reg, port)
	require.True(t, ok)
	require.NoError(t, c.Close())
	_, ok = leaseOn(t, reg, port)
	assert.False(t, ok)
}

// TestListenLeaseEndsWithProcess: a child Listens on a lease and is
// killed; its lease is reclaimed as every dead owner's is.
func TestListenLeaseEndsWithProcess(t *testing.T) {
	reg := mustOpen(t)
	c := startChild(t, nil, "PORTFOR_TEST_LISTEN=lease", "PORTFOR_TEST_DB="+reg.Path())
	port, err := strconv.Atoi(c.first)
	require.NoError(t, err, c.first)
	a, ok := leaseOn(t, reg, port)
	require.True(t, ok)
	assert.Equal(t, c.cmd.Process.Pid, a.OwnerPID)
	require.NoError(t, c.cmd.Process.Kill())
	_ = c.cmd.Wait()
	gone, err := reg.Reclaim(ctx)
	require.NoError(t, err)
	assert.True(t, slices.ContainsFunc(gone, func(g registry.Assignment) bool { return g.Port == port }), "%v", gone)
	_, ok = leaseOn(t, reg, port)
	assert.False(t, ok)
}

// portforBinary builds the portfor command into a temporary directory.
func portforBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "portfor")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/portfor/portfor/cmd/portfor").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestListenTakesOnlySocketsHandedOverAtStart starts a process whose
// LISTEN_PID is its own and whose LISTEN_FDS promises sockets that were
// never passed: a socket it opens itself before calling ListenPacket must
// not be taken for a handed-over one (and closed behind its back).
func TestListenTakesOnlySocketsHandedOverAtStart(t *testing.T) {
	reg := mustOpen(t)
	sh := `LISTEN_PID=$$ LISTEN_FDS=4 LISTEN_FDNAMES=listen-own:listen-own:listen-own:listen-own exec "$0" -test.run='^$'`
	c := startChild(t, []string{"sh", "-c", sh, os.Args[0]}, "PORTFOR_TEST_LISTEN=own", "PORTFOR_TEST_DB="+reg.Path())
	assert.Equal(t, fmt.Sprintf("false %d", portOf(t, reg, "listen-own")), c.first)
}

// malformedMain is the test binary started with a LISTEN_* environment
// that breaks the protocol and names listen-bad in LISTEN_FDNAMES: it
// binds listen-free (TCP and UDP), tries listen-bad (TCP and UDP) and
// reports on one line, then says listen-bad's error on a second.
func malformedMain(reg *registry.Registry) int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Println("error:", err); return 1 }
	l, err := reg.Listen(ctx, "listen-free", registry.ListenOptions{})
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	p, err := reg.ListenPacket(ctx, "listen-free", registry.ListenOptions{})
	if err != nil {
		return fail(err)
	}
	defer p.Close()
	bad, tcpErr := reg.Listen(ctx, "listen-bad", registry.ListenOptions{})
	if tcpErr == nil {
		bad.Close()
	}
	badp, udpErr := reg.ListenPacket(ctx, "listen-bad", registry.ListenOptions{})
	if udpErr == nil {
		badp.Close()
	}
	fmt.Printf("free %d %d; bad tcp=%t udp=%t\n", tcpPort(l), udpPort(p),
		errors.Is(tcpErr, registry.ErrActivationEnv), errors.Is(udpErr, registry.ErrActivationEnv))
	fmt.Println(tcpErr)
	return 0
}

// TestListenMalformedHandOver starts processes whose LISTEN_* environment
// breaks the protocol: nothing usable was handed over, so a name the
// environment does not list binds as usual, and one it lists (whose
// socket cannot be told apart) fails with ErrActivationEnv saying why,
// rather than being bound behind the parent's back.
func TestListenMalformedHandOver(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sockets are handed over on Unix only")
	}
	tests := []struct{ name, env, says string }{
		{"count not a number", `LISTEN_PID=$$ LISTEN_FDS=abc LISTEN_FDNAMES=listen-bad`, `LISTEN_FDS="abc"`},
		{"names not the count", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=listen-bad:listen-other`, `LISTEN_FDNAMES="listen-bad:listen-other" names 2 descriptors, LISTEN_FDS=1`},
		{"an empty name", `LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=listen-bad:`, `name 2 ("")`},
		{"pid not a pid", `LISTEN_PID=x LISTEN_FDS=1 LISTEN_FDNAMES=listen-bad`, `LISTEN_PID="x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := mustOpen(t)
			sh := tt.env + ` exec "$0" -test.run='^$'`
			c := startChild(t, []string{"sh", "-c", sh, os.Args[0]}, "PORTFOR_TEST_LISTEN=malformed", "PORTFOR_TEST_DB="+reg.Path())
			free := portOf(t, reg, "listen-free")
			assert.Equal(t, fmt.Sprintf("free %d %d; bad tcp=true udp=true", free, free), c.first)
			msg := c.line(t)
			assert.Contains(t, msg, `listen "listen-bad": `)
			assert.Contains(t, msg, "bad socket-activation environment")
			assert.Contains(t, msg, tt.says)
			_, err := reg.Lookup(ctx, "listen-bad")
			assert.ErrorIs(t, err, registry.ErrNotFound, "listen-bad must not be assigned a port")
		})
	}
}

// handedMain is the command of `portfor run --listen listen-web listen-api -- TEST`:
// it says "ready", waits for "go" (the parent has connected to web's
// port by then), takes the sockets with Listen and reports what it got on
// one line, then answers the connection queued on web's socket.
func handedMain(reg *registry.Registry) int {
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return 1
	}
	ctx := context.Background()
	fail := func(err error) int { fmt.Println("error:", err); return 1 }
	var report []string
	links := map[int]string{3: fdLink(3), 4: fdLink(4)}
	web, err := reg.Listen(ctx, "listen-web", registry.ListenOptions{Address: "0.0.0.0"}) // the socket wins
	if err != nil {
		return fail(err)
	}
	report = append(report, fmt.Sprintf("web %d same-socket=%t", tcpPort(web), listenerLink(web) == links[3]))
	_, err = reg.Listen(ctx, "listen-web", registry.ListenOptions{})
	report = append(report, fmt.Sprintf("again in-use=%t", errors.Is(err, registry.ErrPortInUse)))
	udp, err := reg.ListenPacket(ctx, "listen-web", registry.ListenOptions{}) // not handed over: bound here
	if err != nil {
		return fail(err)
	}
	defer udp.Close()
	report = append(report, fmt.Sprintf("udp %d", udpPort(udp)))
	api, err := reg.Listen(ctx, "listen-api", registry.ListenOptions{})
	if err != nil {
		return fail(err)
	}
	defer api.Close()
	report = append(report, fmt.Sprintf("api %d same-socket=%t", tcpPort(api), listenerLink(api) == links[4]))
	db, err := reg.Listen(ctx, "listen-db", registry.ListenOptions{}) // not handed over: a new name
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	report = append(report, fmt.Sprintf("db %d", tcpPort(db)))
	report = append(report, "env "+os.Getenv("LISTEN_FDS")+" "+os.Getenv("LISTEN_FDNAMES"))
	fmt.Println(strings.Join(report, "; "))
	c, err := web.Accept()
	if err != nil {
		return fail(err)
	}
	fmt.Fprintln(c, "hello from the handed-over socket")
	c.Close()
	web.Close()
	return 0
}

// fdLink is what /proc says descriptor fd is ("socket:[123]"), where
// there is a /proc, else "".
func fdLink(fd uintptr) string {
	s, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return s
}

// listenerLink is fdLink of l's descriptor.
func listenerLink(l net.Listener) string {
	sc, err := l.(syscall.Conn).SyscallConn()
	if err != nil {
		return "error"
	}
	var link string
	_ = sc.Control(func(fd uintptr) { link = fdLink(fd) })
	return link
}

// TestListenTakesHandedOverSocket runs the real `portfor run --listen listen-web
// listen-api -- TEST`: Listen in TEST takes the sockets portfor bound (the same
// socket, by /proc, where there is one) on the names' ports, and binds
// anything else as usual.
func TestListenTakesHandedOverSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("portfor run --listen hands sockets over on Unix only")
	}
	reg := mustOpen(t)
	bin := portforBinary(t)
	c := startChild(t, []string{bin, "--db", reg.Path(), "run", "--listen", "listen-web", "listen-api", "--", os.Args[0], "-test.run=^$"},
		"PORTFOR_TEST_LISTEN=handed", "PORTFOR_TEST_DB="+reg.Path())
	require.Equal(t, "ready", c.first)
	web, api := portOf(t, reg, "listen-web"), portOf(t, reg, "listen-api")
	// Queued on the socket portfor bound, before TEST calls Listen.
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", web), 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(c.stdin, "go\n")
	require.NoError(t, err)
	report := c.line(t)
	require.NotContains(t, report, "error:")
	db := portOf(t, reg, "listen-db")
	assert.Equal(t, fmt.Sprintf("web %d same-socket=true; again in-use=true; udp %d; api %d same-socket=true; db %d; env 2 listen-web:listen-api", web, web, api, db), report)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "hello from the handed-over socket\n", line)
	require.NoError(t, c.stdin.Close())
	require.NoError(t, c.cmd.Wait())
}

func TestPortInUseErrorSaysWho(t *testing.T) {
	node := registry.Process{PID: 4242, Program: "node", Dir: "/home/u/app"}
	v4, v6 := netip.MustParseAddrPort("127.0.0.1:8000"), netip.MustParseAddrPort("[::]:8000")
	e := func(proto string, hs ...registry.Holder) string {
		return (&registry.PortInUseError{Addr: registry.HostPort{Host: "127.0.0.1", Port: 8000}, IP: v4.Addr(), Proto: proto, Holders: hs}).Error()
	}
	tests := []struct{ got, want string }{
		{e("tcp", registry.Holder{Proto: "tcp", Local: v4, Procs: []registry.Process{node}}, registry.Holder{Proto: "tcp", Local: v6, Procs: []registry.Process{node}}),
			"port 8000: in use by node (pid 4242) in /home/u/app"},
		{e("udp", registry.Holder{Proto: "udp", Local: v4, Procs: []registry.Process{{PID: 7}}}), "udp port 8000: in use by a process (pid 7)"},
		{e("tcp", registry.Holder{Proto: "tcp", Local: v4, Procs: []registry.Process{{PID: 7, Program: "evil\n\x1b[31m", Dir: "/tmp/a\nb"}}}),
			`port 8000: in use by evil; \x1b[31m (pid 7) in /tmp/a; b`},
		{e("tcp", registry.Holder{Proto: "tcp", Local: v4, Hidden: true, UID: 70, User: "postgres"}, registry.Holder{Proto: "tcp", Local: v6, Hidden: true, UID: 70, User: "postgres"}),
			"port 8000: in use by a process of user postgres (not visible)"},
		{e("tcp", registry.Holder{Proto: "tcp", Local: v4, Hidden: true, UID: 1234}), "port 8000: in use by a process of uid 1234 (not visible)"},
		{e("tcp", registry.Holder{Proto: "tcp", Local: v4, Procs: []registry.Process{{PID: 1, Program: "a"}, {PID: 2, Program: "b"}, {PID: 3, Program: "c"}, {PID: 4, Program: "d"}}}),
			"port 8000: in use by a (pid 1), b (pid 2) and 2 more"},
		{e("tcp", registry.Holder{Proto: "tcp", Local: v4, Procs: []registry.Process{{PID: 1, Program: "a"}, {PID: 2, Program: "b"}}}),
			"port 8000: in use by a (pid 1) and b (pid 2)"},
		{e("tcp"), "port 8000: in use on 127.0.0.1"},
		{(&registry.PortInUseError{Addr: registry.HostPort{Host: "localhost", Port: 8080}, IP: netip.IPv6Loopback()}).Error(), "Port 8080 is in use on localhost (::1)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.got)
	}
}
