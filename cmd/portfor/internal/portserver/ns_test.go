//go:build linux

package portserver_test

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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/portserverclient"
)

// A client in a pid namespace of its own is run as the test binary:
// nsRoleEnv=init makes it the namespace's init, which mounts a /proc of its
// own, starts a member (nsRoleEnv=member, its pid 2, waiting on stdin) and
// asks the server at nsAddrEnv for the member's pid and then for each pid in
// nsPidsEnv, printing "pid N: port P" or "pid N: error" per request.
const (
	nsRoleEnv = "PORTSERVER_TEST_NS_ROLE"
	nsAddrEnv = "PORTSERVER_TEST_NS_ADDR"
	nsPidsEnv = "PORTSERVER_TEST_NS_PIDS"
)

func nsClient() int {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Printf("skip: make mounts private: %v\n", err)
		return 0
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fmt.Printf("skip: mount a /proc for the namespace: %v\n", err)
		return 0
	}
	member := exec.Command(os.Args[0], "-test.run=^$")
	member.Env = append(os.Environ(), nsRoleEnv+"=member")
	stdin, err := member.StdinPipe()
	if err == nil {
		err = member.Start()
	}
	if err != nil {
		fmt.Printf("error: member: %v\n", err)
		return 1
	}
	defer func() { stdin.Close(); _ = member.Wait() }()
	pids := []string{strconv.Itoa(member.Process.Pid)}
	pids = append(pids, strings.Fields(os.Getenv(nsPidsEnv))...)
	for _, s := range pids {
		pid, _ := strconv.Atoi(s)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		port, err := portserverclient.Ask(ctx, os.Getenv(nsAddrEnv), pid)
		cancel()
		if err != nil {
			fmt.Printf("pid %d: error\n", pid)
		} else {
			fmt.Printf("pid %d: port %d\n", pid, port)
		}
	}
	fmt.Println("done")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// A client in another pid namespace sends its pid there: the server must
// lease for that process (numbered otherwise on its side), never for the
// process its own /proc has under the number sent.
func TestServerResolvesPidsInTheClientsNamespace(t *testing.T) {
	needRoot(t)
	s := startServer(t, t.TempDir(), 2*time.Second)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The test process's own pid means nothing in the client's namespace.
	cmd.Env = append(os.Environ(), nsRoleEnv+"=init", nsAddrEnv+"="+s.addr,
		nsPidsEnv+"="+strconv.Itoa(os.Getpid()), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = &testWriter{t}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Skipf("cannot create a pid namespace here: %v", err)
	}
	w.Close()
	defer r.Close()
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	require.NoError(t, r.SetReadDeadline(time.Now().Add(60*time.Second)))
	lines := bufio.NewReader(r)
	var said []string
	for {
		line, err := lines.ReadString('\n')
		require.NoError(t, err, "reading the client (said %q)", said)
		line = strings.TrimSpace(line)
		if reason, ok := strings.CutPrefix(line, "skip: "); ok {
			t.Skip(reason)
		}
		if line == "done" {
			break
		}
		said = append(said, line)
	}
	require.Len(t, said, 2)
	var nsPID, port int
	_, err = fmt.Sscanf(said[0], "pid %d: port %d", &nsPID, &port)
	require.NoError(t, err, "the member's port: %q\n%s", said[0], s.log.String())
	assert.Equal(t, fmt.Sprintf("pid %d: error", os.Getpid()), said[1], "a pid that is not one of the client's namespace is refused")

	// The member, as the host numbers it: the init's child. Children are
	// listed per thread, and any thread of the Go runtime may have forked it.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", cmd.Process.Pid))
	require.NoError(t, err)
	var children []string
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		require.NoError(t, err)
		children = append(children, strings.Fields(string(b))...)
	}
	require.Len(t, children, 1, "the init's children")
	host, err := strconv.Atoi(children[0])
	require.NoError(t, err)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", host))
	require.NoError(t, err)
	require.Contains(t, string(status), fmt.Sprintf("NSpid:\t%d\t%d\n", host, nsPID))

	list, err := s.reg.List(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 1, "one lease, for the member")
	assert.Equal(t, port, list[0].Port)
	assert.Equal(t, host, list[0].OwnerPID, "leased to the member, as the server numbers it")
	assert.True(t, list[0].OwnerAlive())
	assert.Contains(t, s.log.String(), fmt.Sprintf("pid %d: pid %d here", nsPID, host))
}
