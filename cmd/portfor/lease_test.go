//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPickListGCRelease(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "pick", strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, o.code, o.stderr)
	port, err := strconv.Atoi(strings.TrimSpace(o.stdout))
	require.NoError(t, err)

	o = portfor(t, db, "pick", "-n", "3", strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, o.code, o.stderr)
	more := strings.Fields(o.stdout)
	require.Len(t, more, 3)

	// Leased to the test binary's child by default (its parent: us)...
	o = portfor(t, db, "pick")
	require.Equal(t, 0, o.code, o.stderr)

	// ...and to a process that has since exited.
	gone := command(t, db, "pick")
	sh := exec.Command("sh", "-c", `"$0" pick`, os.Args[0])
	sh.Env, sh.Dir = gone.Env, gone.Dir
	out, err := sh.Output()
	require.NoError(t, err)
	deadPort := strings.TrimSpace(string(out))

	o = portfor(t, db, "list", "--leases")
	require.Equal(t, 0, o.code)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 7)
	assert.Regexp(t, `^PORT +OWNER +ALIVE +AGE +COMMAND$`, lines[0])
	assert.Regexp(t, fmt.Sprintf(`(?m)^%d +%d +yes +\d+s +`, port, os.Getpid()), o.stdout)
	assert.Regexp(t, deadPort+` +\d+ +no +\d+s +sh -c`, o.stdout)

	o = portfor(t, db, "gc")
	assert.Equal(t, 0, o.code)
	assert.Regexp(t, `^released port `+deadPort+` \(lease of pid \d+, gone: sh -c .*\)\n$`, o.stdout)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "gc"), "nothing left to collect")

	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "release", "--port", strconv.Itoa(port)))
	assert.Equal(t, outcome{"", fmt.Sprintf("portfor: release port %d: not found\n", port), 1}, portfor(t, db, "release", "--port", strconv.Itoa(port)))

	assert.Equal(t, 2, portfor(t, db, "pick", "x").code)
	assert.Equal(t, 2, portfor(t, db, "pick", "-n", "0").code)
	o = portfor(t, db, "pick", "1")
	assert.Equal(t, 1, o.code)
	assert.Equal(t, "portfor: lease for pid 1: pid 1 cannot own a lease: it never exits, so the lease would never end\n", o.stderr)
	assert.Equal(t, 2, portfor(t, db, "release", "--port", "0").code)
}

// startServe runs `portfor serve` as a child and returns once it listens.
func startServe(t *testing.T, db, addr, pool string) *exec.Cmd {
	t.Helper()
	cmd := command(t, db, "serve", "--address", addr, "--pool", pool, "--verbose")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("portfor: serving ports %s on %s\n", pool, addr), line)
	go io.Copy(io.Discard, stderr)
	return cmd
}

func TestServeAnswersPickAndStopsCleanly(t *testing.T) {
	db := newDB(t)
	sock := filepath.Join(t.TempDir(), "ps.sock")
	srv := startServe(t, db, sock, "21000-21099")

	cmd := command(t, db, "pick", "-n", "2", strconv.Itoa(os.Getpid()))
	cmd.Env = append(cmd.Env, "PORTSERVER_ADDRESS="+sock)
	out, err := cmd.Output()
	require.NoError(t, err)
	ports := strings.Fields(string(out))
	require.Len(t, ports, 2)
	for _, p := range ports {
		n, _ := strconv.Atoi(p)
		assert.True(t, n >= 21000 && n <= 21099, "port %d from the server's pool", n)
	}

	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.Wait(), "exits 0 on SIGTERM")
	_, err = os.Lstat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist, "removes its socket file")
}

// TestPortpickerClientsThroughServe is the interop test with the real
// client: Python processes calling portpicker.pick_unused_port() with
// PORTSERVER_ADDRESS set, while malformed requests arrive beside them.
func TestPortpickerClientsThroughServe(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import portpicker").Run(); err != nil {
		t.Skip("needs Debian's python3-portpicker (apt-get install python3-portpicker); .ci/run installs it")
	}
	db := newDB(t)
	addr := fmt.Sprintf("@portfor-interop-%d-%d", os.Getpid(), time.Now().UnixNano())
	srv := startServe(t, db, addr, "22000-22999")

	const clients = 16
	script := `import os, sys, portpicker
ports = [portpicker.pick_unused_port() for _ in range(3)]
print(" ".join(map(str, ports)), flush=True)
sys.stdin.read()  # hold the ports until told to go
`
	type client struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var cs []client
	for i := 0; i < clients; i++ {
		cmd := exec.Command("/usr/bin/python3", "-c", script)
		cmd.Env = append(os.Environ(), "PORTSERVER_ADDRESS="+addr)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		cs = append(cs, client{cmd, stdin, bufio.NewReader(stdout)})
	}
	// Malformed requests at the same time: empty, non-numeric, huge, slow.
	var wg sync.WaitGroup
	for _, req := range []string{"", "abc\n", strings.Repeat("7", 1<<16), "slow"} {
		wg.Go(func() {
			c, err := net.Dial("unix", addr)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if req != "slow" {
				_, _ = c.Write([]byte(req))
			}
			_, _ = io.ReadAll(c)
		})
	}

	seen := map[int]int{}
	for i, c := range cs {
		line, err := c.out.ReadString('\n')
		require.NoError(t, err, "client %d", i)
		for _, f := range strings.Fields(line) {
			p, err := strconv.Atoi(f)
			require.NoError(t, err)
			assert.True(t, p >= 22000 && p <= 22999, "client %d got %d, outside the server's pool (did it fall back?)", i, p)
			prev, dup := seen[p]
			assert.False(t, dup, "port %d given to clients %d and %d", p, prev, i)
			seen[p] = i
		}
	}
	assert.Len(t, seen, clients*3)
	wg.Wait()
	for _, c := range cs {
		c.stdin.Close()
		require.NoError(t, c.cmd.Wait())
	}
	require.NoError(t, srv.Process.Signal(syscall.SIGINT))
	require.NoError(t, srv.Wait())
}

func TestDoctorCommand(t *testing.T) {
	db := newDB(t)
	assert.Equal(t, outcome{"note: no registry yet at " + db + " (it is created by the first assignment)\n", "", 0}, portfor(t, db, "doctor"))
	require.Equal(t, 0, portfor(t, db, "web").code)
	require.NoError(t, os.Chmod(db, 0o640))
	o := portfor(t, db, "doctor")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stdout, "problem: "+db+" is mode 0640: wider than 0600")
	assert.Contains(t, o.stdout, "ok: registry.db: bbolt structure sound, id and port indexes agree")
	assert.Equal(t, "portfor: 1 problem(s) in "+db+" (portfor doctor --fix repairs the safe ones)\n", o.stderr)
	o = portfor(t, db, "doctor", "--fix")
	assert.Equal(t, 0, o.code, o.stderr)
	assert.Contains(t, o.stdout, "fixed: "+db+" was mode 0640: now 0600")
	assert.Equal(t, 0, portfor(t, db, "doctor").code)
}

// TestDoctorFindsANameAndALeaseOnOnePort: a registry file restored from a
// copy older than a lease gives the leased port to a name too. Doctor
// exits 1; --fix ends the lease, since the name is the lasting claim.
func TestDoctorFindsANameAndALeaseOnOnePort(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "pick", strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, o.code, o.stderr)
	port := strings.TrimSpace(o.stdout)
	older := newDB(t)
	require.Equal(t, outcome{"", "", 0}, portfor(t, older, "bind", "web", port))
	b, err := os.ReadFile(older)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(db, b, 0o600))

	o = portfor(t, db, "doctor")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stdout, fmt.Sprintf(`problem: port %s is held by the name "web" in registry.db and leased to pid %d`, port, os.Getpid()))
	assert.Equal(t, "portfor: 1 problem(s) in "+db+" (portfor doctor --fix repairs the safe ones)\n", o.stderr)
	o = portfor(t, db, "doctor", "--fix")
	assert.Equal(t, 0, o.code, o.stderr)
	assert.Contains(t, o.stdout, fmt.Sprintf("fixed: ended the lease on port %s of pid %d", port, os.Getpid()))
	assert.Equal(t, 0, portfor(t, db, "doctor").code)
	assert.Equal(t, outcome{port + "\n", "", 0}, portfor(t, db, "get", "web"))
	assert.NotRegexp(t, `(?m)^`+port+` `, portfor(t, db, "list", "--leases").stdout, "the lease is gone")
}

// TestDoctorPassesAfterKilledCallers: what killed processes leave behind
// is cleaned up by portfor itself, so doctor notes it and exits 0.
func TestDoctorPassesAfterKilledCallers(t *testing.T) {
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "web").code)
	// A lease whose owner has exited.
	gone := command(t, db, "pick")
	sh := exec.Command("sh", "-c", `"$0" pick`, os.Args[0])
	sh.Env, sh.Dir = gone.Env, gone.Dir
	require.NoError(t, sh.Run())
	// Callers killed at random moments, while others keep the lock busy.
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			args := []string{fmt.Sprintf("svc-%d", i)}
			if i%3 == 0 {
				args = []string{"pick", "-n", "2"}
			}
			cmd := command(t, db, args...)
			if cmd.Start() != nil {
				return
			}
			// The kill lands anywhere from before the first system call
			// to after the commit: that is the point, not synchronisation.
			time.Sleep(time.Duration(i%8) * time.Millisecond)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	wg.Wait()
	o := portfor(t, db, "doctor")
	assert.Equal(t, 0, o.code, "doctor after killed callers:\n%s%s", o.stdout, o.stderr)
	assert.Empty(t, o.stderr)
	assert.Regexp(t, `(?m)^note: `, o.stdout, "the dead lease is a note")
	assert.NotRegexp(t, `(?m)^problem: `, o.stdout)
}
