//go:build unix

package registry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/nstest"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/sockdiag"
	"github.com/portfor/portfor/registry"
)

// sockHolder is a child process holding sockets the test made: sleep, or a
// shell that ignores SIGTERM and then becomes sleep.
type sockHolder struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once it has exited and been reaped
}

// startSockHolder starts a child holding files as its descriptors 3, 4 …;
// with ignoreTerm it ignores SIGTERM. The caller closes its own copies of
// files when the child alone is to hold them.
func startSockHolder(t *testing.T, ignoreTerm bool, files ...*os.File) *sockHolder {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if ignoreTerm {
		cmd = exec.Command("sh", "-c", "trap '' TERM; echo ready; exec sleep 600")
	}
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h := &sockHolder{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	if ignoreTerm {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err, "the shell did not start")
		require.Equal(t, "ready\n", line)
	}
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-h.done })
	return h
}

// startShellHolder starts sh -c script holding f as its descriptor 3, with
// its stdin and stdout piped to the test, and waits for the script to print
// "ready".
func startShellHolder(t *testing.T, script string, f *os.File) (h *sockHolder, stdout *bufio.Reader, stdin io.Writer) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h = &sockHolder{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-h.done; in.Close() })
	stdout = bufio.NewReader(out)
	line, err := stdout.ReadString('\n')
	require.NoError(t, err, "the shell did not start")
	require.Equal(t, "ready\n", line)
	return h, stdout, in
}

// exitSignal waits (a minute at most) until h has exited and returns the
// signal that ended it.
func (h *sockHolder) exitSignal(t *testing.T) syscall.Signal {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(time.Minute):
		t.Fatalf("pid %d is still running", h.pid)
	}
	return h.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal()
}

// kill ends h with SIGKILL and returns the signal that ended it: SIGKILL,
// unless some signal had been sent to it before (a SIGTERM sent earlier
// sets its exit status, whatever comes after).
func (h *sockHolder) kill(t *testing.T) syscall.Signal {
	t.Helper()
	_ = h.cmd.Process.Kill()
	return h.exitSignal(t)
}

// socketFile listens (TCP) or binds (UDP) on network's loopback and returns
// the socket as a file, this process's only descriptor on it, and its
// port; ok is false when the network is missing (no IPv6).
func socketFile(t *testing.T, network string) (f *os.File, port int, ok bool) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network[len(network)-1] == '6' {
		addr = "[::1]:0"
	}
	var err error
	if network[0] == 'u' {
		c, lerr := net.ListenPacket(network, addr)
		if lerr != nil {
			return nil, 0, false
		}
		defer c.Close()
		port = c.LocalAddr().(*net.UDPAddr).Port
		f, err = c.(*net.UDPConn).File()
	} else {
		l, lerr := net.Listen(network, addr)
		if lerr != nil {
			return nil, 0, false
		}
		defer l.Close()
		port = l.Addr().(*net.TCPAddr).Port
		f, err = l.(*net.TCPListener).File()
	}
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, port, true
}

// heldSocket starts a child holding a new socket on network alone and
// returns it with the port.
func heldSocket(t *testing.T, network string, ignoreTerm bool) (*sockHolder, int) {
	t.Helper()
	f, port, ok := socketFile(t, network)
	if !ok {
		t.Skipf("no %s here", network)
	}
	h := startSockHolder(t, ignoreTerm, f)
	require.NoError(t, f.Close())
	return h, port
}

func skipUnlessStops(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Stop finds the holders of a port through Linux's sock_diag")
	}
}

func pids(ps []registry.Process) []int {
	out := []int{}
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func TestStopSendsSIGTERMToTheHolder(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	reg := mustOpen(t)
	for _, network := range []string{"tcp4", "tcp6", "udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			h, port := heldSocket(t, network, false)
			res, err := reg.Stop(ctx, port, registry.StopOptions{Wait: time.Minute})
			require.NoError(t, err)
			assert.Equal(t, port, res.Port)
			assert.Equal(t, []int{h.pid}, pids(res.Terminated))
			assert.Equal(t, "sleep", res.Terminated[0].Program)
			assert.Empty(t, res.Killed)
			assert.Empty(t, res.LeftAlone)
			assert.Empty(t, res.Held)
			assert.Equal(t, syscall.SIGTERM, h.exitSignal(t))
		})
	}
}

func TestStopKillsWhatIgnoresSIGTERMOnlyWhenAsked(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	reg := mustOpen(t)
	h, port := heldSocket(t, "tcp4", true)

	res, err := reg.Stop(ctx, port, registry.StopOptions{Wait: 50 * time.Millisecond})
	require.ErrorIs(t, err, registry.ErrStillHeld)
	assert.Equal(t, []int{h.pid}, pids(res.Terminated))
	assert.Empty(t, res.Killed)
	require.Len(t, res.Held, 1)
	assert.Equal(t, []int{h.pid}, pids(res.Held[0].Procs))

	res, err = reg.Stop(ctx, port, registry.StopOptions{Wait: 50 * time.Millisecond, Kill: true})
	require.NoError(t, err)
	assert.Equal(t, []int{h.pid}, pids(res.Terminated))
	assert.Equal(t, []int{h.pid}, pids(res.Killed))
	assert.Empty(t, res.Held)
	assert.Equal(t, syscall.SIGKILL, h.exitSignal(t))
}

func TestStopSignalsEveryProcessSharingTheSocket(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	reg := mustOpen(t)
	f, port, ok := socketFile(t, "tcp4")
	require.True(t, ok)
	a := startSockHolder(t, false, f)
	b := startSockHolder(t, false, f)
	require.NoError(t, f.Close())
	res, err := reg.Stop(ctx, port, registry.StopOptions{Wait: time.Minute})
	require.NoError(t, err)
	assert.ElementsMatch(t, []int{a.pid, b.pid}, pids(res.Terminated))
	assert.Equal(t, syscall.SIGTERM, a.exitSignal(t))
	assert.Equal(t, syscall.SIGTERM, b.exitSignal(t))
}

func TestStopLeavesItsCallerAlone(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	reg := mustOpen(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	f, err := l.(*net.TCPListener).File()
	require.NoError(t, err)
	h := startSockHolder(t, false, f)
	require.NoError(t, f.Close())

	res, err := reg.Stop(ctx, port, registry.StopOptions{Wait: time.Minute})
	require.ErrorIs(t, err, registry.ErrStillHeld)
	assert.Equal(t, []int{h.pid}, pids(res.Terminated))
	require.Len(t, res.LeftAlone, 1)
	assert.Equal(t, registry.ReasonCaller, res.LeftAlone[0].Reason)
	assert.Equal(t, os.Getpid(), res.LeftAlone[0].Process.PID)
	assert.Equal(t, uint32(os.Geteuid()), res.LeftAlone[0].UID)
	require.Len(t, res.Held, 1)
	assert.Equal(t, []int{os.Getpid()}, pids(res.Held[0].Procs))
	assert.Equal(t, syscall.SIGTERM, h.exitSignal(t))
}

func TestStopWithNothingOnThePort(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	port := freePort(t)
	res, err := mustOpen(t).Stop(ctx, port, registry.StopOptions{Wait: time.Minute, Kill: true})
	require.NoError(t, err)
	assert.Equal(t, registry.StopResult{Port: port, Held: []registry.Holder{}}, res)
	for _, bad := range []int{0, -1, 65536} {
		_, err := mustOpen(t).Stop(ctx, bad, registry.StopOptions{})
		assert.ErrorIs(t, err, registry.ErrInvalidPort, "%d", bad)
	}
}

// startOnPid starts a holder of files that gets pid, as a reused pid would
// be, where it can: in a pid namespace of the test's own (nstest), the test
// has the kernel hand pid out next (ns_last_pid), trying again while its own
// threads take it first. reused is false when the child got another pid.
func startOnPid(t *testing.T, pid int, files ...*os.File) (h *sockHolder, reused bool) {
	t.Helper()
	if !nstest.PID() {
		// The pid allocation of this namespace is not the test's to steer.
		return startSockHolder(t, false, files...), false
	}
	for i := 0; i < 200; i++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Logf("ns_last_pid: %v", err)
			return startSockHolder(t, false, files...), false
		}
		h := startSockHolder(t, false, files...)
		if h.pid == pid {
			return h, true
		}
		h.kill(t)
	}
	t.Errorf("pid %d never came back in 200 tries, with only this test's threads to take it first", pid)
	return startSockHolder(t, false, files...), false
}

// TestStopSignalsOnlyTheProcessItFound gives the check before each signal
// real processes that are not the holder found: the holder with another
// start time recorded, the holder with a socket it does not hold, a pid
// whose process is gone, and a new process on that pid (in a pid namespace
// of its own, see nstest), holding no socket or, with pidfds, the
// very same socket. None may get a signal; the holder as found does.
func TestStopSignalsOnlyTheProcessItFound(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{PID: true}) {
		return
	}
	for _, path := range []string{"pidfd", "kill"} {
		t.Run(path, func(t *testing.T) {
			if path == "kill" {
				registry.WithoutPidfd(t)
			}
			// f stays open here, to hand the same socket to a later process.
			f, port, ok := socketFile(t, "tcp4")
			require.True(t, ok)
			ino := inodeOn(t, port)
			other, err := net.Listen("tcp4", "127.0.0.1:0")
			require.NoError(t, err)
			defer other.Close()
			otherIno := inodeOn(t, other.Addr().(*net.TCPAddr).Port)

			a := startSockHolder(t, false, f)
			id, err := procinfo.Lookup(a.pid)
			require.NoError(t, err)
			assert.Equal(t, "gone", registry.PinHolder(t, a.pid, id.Start+1, port, []uint64{ino})(), "another start time")
			assert.Equal(t, "gone", registry.PinHolder(t, a.pid, id.Start, port, []uint64{otherIno})(), "a socket it does not hold")
			signalA := registry.PinHolder(t, a.pid, id.Start, port, []uint64{ino})
			assert.Equal(t, syscall.SIGKILL, a.kill(t), "no signal reached it before SIGKILL")
			assert.Equal(t, "gone", signalA(), "exited")
			assert.Equal(t, "gone", registry.PinHolder(t, a.pid, id.Start, port, []uint64{ino})(), "exited, found after")

			// A new process on a's pid, holding no socket: never signalled.
			b, reused := startOnPid(t, a.pid)
			t.Logf("pid %d reused: %v (it needs a pid namespace of its own)", a.pid, reused)
			assert.Equal(t, "gone", signalA(), "a new process on the pid")
			assert.Equal(t, "gone", registry.PinHolder(t, a.pid, id.Start, port, []uint64{ino})(), "a new process on the pid, found after")
			assert.Equal(t, syscall.SIGKILL, b.kill(t), "no signal reached the new process before SIGKILL")

			// A new process on the pid holding the very socket a held:
			// with a pidfd taken when a was found, never signalled, even
			// when it started within a's clock tick, with a's start time.
			if path == "pidfd" {
				c, reused := startOnPid(t, a.pid, f)
				t.Logf("pid %d reused: %v", a.pid, reused)
				assert.Equal(t, "gone", signalA(), "a new process on the pid, holding the socket")
				assert.Equal(t, syscall.SIGKILL, c.kill(t), "no signal reached the new process before SIGKILL")
			}

			d := startSockHolder(t, false, f)
			id, err = procinfo.Lookup(d.pid)
			require.NoError(t, err)
			assert.Equal(t, "sent", registry.PinHolder(t, d.pid, id.Start, port, []uint64{otherIno, ino})())
			assert.Equal(t, syscall.SIGTERM, d.exitSignal(t))
		})
	}
}

// inodeOn returns the inode of the one socket on port.
func inodeOn(t *testing.T, port int) uint64 {
	t.Helper()
	socks, err := sockdiag.Lookup(port)
	require.NoError(t, err)
	require.Len(t, socks, 1)
	return socks[0].Inode
}

func TestStopWithoutPidfds(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	registry.WithoutPidfd(t)
	h, port := heldSocket(t, "tcp4", false)
	res, err := mustOpen(t).Stop(ctx, port, registry.StopOptions{Wait: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, []int{h.pid}, pids(res.Terminated))
	assert.Equal(t, syscall.SIGTERM, h.exitSignal(t))
}

// A holder sharing its socket with a process Stop leaves alone (here the
// caller) gets the whole wait to let go of it after SIGTERM: the other
// holder keeps the port held whatever happens, and must not make Stop take
// the port for let go at once, nor send SIGKILL before the wait is over.
func TestStopWaitsForTheHolderSharingASocketWithOneLeftAlone(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	f, err := l.(*net.TCPListener).File()
	require.NoError(t, err)
	// A server that takes a second to shut down on SIGTERM (its sleep
	// does not hold the socket), and exits 0 then.
	h, _, _ := startShellHolder(t, `trap 'sleep 1 3>&-; exit 0' TERM; echo ready; while :; do read y; done`, f)
	require.NoError(t, f.Close())

	res, err := mustOpen(t).Stop(ctx, port, registry.StopOptions{Wait: time.Minute, Kill: true})
	require.ErrorIs(t, err, registry.ErrStillHeld, "the caller still holds the port")
	assert.Equal(t, []int{h.pid}, pids(res.Terminated))
	assert.Empty(t, res.Killed, "SIGKILL before the wait was over")
	require.Len(t, res.Held, 1)
	assert.Equal(t, []int{os.Getpid()}, pids(res.Held[0].Procs), "the holder let go of the port before Stop returned")
	<-h.done
	assert.Equal(t, 0, h.cmd.ProcessState.ExitCode(), "the holder shut down by itself: %v", h.cmd.ProcessState)
}

// waitLockWaiter waits (a minute at most) until some process waits in the
// kernel for the flock on path, as /proc/locks shows ("->" lines).
func waitLockWaiter(t *testing.T, path string) {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	file := fmt.Sprintf(":%d", st.Ino) // MAJ:MIN:INODE
	require.Eventually(t, func() bool {
		b, err := os.ReadFile("/proc/locks")
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && strings.HasSuffix(f[6], file) {
				return true
			}
		}
		return false
	}, time.Minute, time.Millisecond, "nothing waits for the lock on %s", path)
}

// A holder that lets go of the port between the moment Stop finds it and the
// signal is not signalled, and the port it left is free: Stop must say so
// from a fresh look, not from the sockets as it first found them. Stop reads
// the port's name from the registry after finding the sockets; the test
// holds the registry's lock to let the holder close its socket right then.
func TestStopLooksAgainWhenNoOneWasSignalled(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{LockTimeout: time.Minute})
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "web", 0) // the registry file exists: names are read under the lock
	require.NoError(t, err)

	f, port, ok := socketFile(t, "tcp4")
	require.True(t, ok)
	h, out, stdin := startShellHolder(t, `echo ready; read x; exec 3>&-; echo closed; exec sleep 600`, f)
	require.NoError(t, f.Close())

	unlock := heldLock(t, reg.LockPath())
	type stopped struct {
		res registry.StopResult
		err error
	}
	done := make(chan stopped, 1)
	go func() {
		res, err := reg.Stop(ctx, port, registry.StopOptions{Wait: time.Minute, Kill: true})
		done <- stopped{res, err}
	}()
	waitLockWaiter(t, reg.LockPath()) // Stop found the holder and waits to read the names
	_, err = io.WriteString(stdin, "close\n")
	require.NoError(t, err)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "closed\n", line)
	unlock()

	s := <-done
	require.NoError(t, s.err, "the port is free")
	assert.Empty(t, s.res.Terminated)
	assert.Empty(t, s.res.LeftAlone)
	assert.Empty(t, s.res.Held)
	assert.Equal(t, syscall.SIGKILL, h.kill(t), "no signal reached the holder after it let go")
}

// Stop interrupted during the wait still says what holds the port: a
// holder signalled that has not let go is not reported stopped.
func TestStopInterruptedSaysWhatStillHoldsThePort(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	f, port, ok := socketFile(t, "tcp4")
	require.True(t, ok)
	h, out, _ := startShellHolder(t, `trap 'echo term' TERM; echo ready; while :; do read y; done`, f)
	require.NoError(t, f.Close())

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type stopped struct {
		res registry.StopResult
		err error
	}
	done := make(chan stopped, 1)
	go func() {
		res, err := mustOpen(t).Stop(cctx, port, registry.StopOptions{Wait: time.Minute})
		done <- stopped{res, err}
	}()
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "term\n", line, "SIGTERM, ignored")
	cancel()

	s := <-done
	require.ErrorIs(t, s.err, context.Canceled)
	assert.Equal(t, []int{h.pid}, pids(s.res.Terminated))
	require.Len(t, s.res.Held, 1, "the holder still holds the port")
	assert.Equal(t, []int{h.pid}, pids(s.res.Held[0].Procs))
}

// Stop interrupted before its first signal (here while it waits for the
// registry's lock to read the port's name) signals nothing.
func TestStopInterruptedBeforeSignallingSignalsNothing(t *testing.T) {
	skipUnlessStops(t)
	if nstest.Run(t, nstest.Options{}) {
		return
	}
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{LockTimeout: time.Minute})
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "web", 0) // the registry file exists: names are read under the lock
	require.NoError(t, err)
	h, port := heldSocket(t, "tcp4", false)

	unlock := heldLock(t, reg.LockPath())
	defer unlock()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type stopped struct {
		res registry.StopResult
		err error
	}
	done := make(chan stopped, 1)
	go func() {
		res, err := reg.Stop(cctx, port, registry.StopOptions{Wait: time.Minute, Kill: true})
		done <- stopped{res, err}
	}()
	waitLockWaiter(t, reg.LockPath()) // Stop found the holder and waits to read the names
	cancel()

	s := <-done
	require.ErrorIs(t, s.err, context.Canceled)
	assert.Empty(t, s.res.Terminated)
	assert.Equal(t, syscall.SIGKILL, h.kill(t), "no signal reached the holder after the interruption")
}
