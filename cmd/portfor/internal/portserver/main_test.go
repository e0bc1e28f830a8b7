//go:build linux

package portserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/registry"
)

// The test binary doubles as the other user's programs, run as a child:
//
//   - PORTSERVER_TEST_SQUAT=ADDRESS binds ADDRESS (a squatter on the port
//     server's name) and answers $PORTSERVER_TEST_ANSWER to every client;
//   - PORTSERVER_TEST_SERVE=DIR runs a port server on DIR/s.sock (mode
//     $PORTSERVER_TEST_MODE) over DIR/r.db, as if the kernel could not tell
//     who its clients are, logging to stderr.
//
// Each prints "ready" once it listens, and exits when its stdin closes.
func TestMain(m *testing.M) {
	if addr := os.Getenv("PORTSERVER_TEST_SQUAT"); addr != "" {
		os.Exit(squat(addr, os.Getenv("PORTSERVER_TEST_ANSWER")))
	}
	if dir := os.Getenv("PORTSERVER_TEST_SERVE"); dir != "" {
		os.Exit(serveBlind(dir, os.Getenv("PORTSERVER_TEST_MODE")))
	}
	switch os.Getenv(nsRoleEnv) {
	case "init":
		os.Exit(nsClient())
	case "member":
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func squat(addr, answer string) int {
	l, err := net.Listen("unix", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "squat:", err)
		return 1
	}
	fmt.Println("ready")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n') // the request
			fmt.Fprint(c, answer)
			c.Close()
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func serveBlind(dir, mode string) int {
	defer portserver.HideClientCredentials()()
	m, _ := strconv.ParseUint(mode, 8, 32)
	reg, err := registry.Open(filepath.Join(dir, "r.db"), registry.Options{})
	if err == nil {
		var l net.Listener
		var closeFn func() error
		l, closeFn, err = portserver.Listen(filepath.Join(dir, "s.sock"), os.FileMode(m))
		if err == nil {
			defer closeFn()
			ctx, cancel := context.WithCancel(context.Background())
			go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
			fmt.Println("ready")
			err = (&portserver.Server{Registry: reg, Log: os.Stderr}).Serve(ctx, l)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// nobody is the user the tests play another user with.
const nobody = 65534

// needRoot skips a test that acts as another user unless it runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a child as another user (nobody, uid 65534)")
	}
}

// openDir returns a new directory under t.TempDir() that user nobody may
// enter (its parents are opened to it too; they hold only this test's files).
func openDir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && len(d) > len(os.TempDir()); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	sub := filepath.Join(dir, "x")
	require.NoError(t, os.Mkdir(sub, 0o700))
	require.NoError(t, os.Chmod(sub, perm))
	return sub
}

// asNobody starts the test binary as user nobody with env, waits (10 s at
// most) until it prints "ready", and stops it when the test ends.
func asNobody(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	// The go tool's build directory is closed to other users: run a copy.
	bin := filepath.Join(openDir(t, 0o755), "portserver.test")
	if err := os.Link(exe, bin); err != nil {
		b, err := os.ReadFile(exe)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(bin, b, 0o755))
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Dir(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &testWriter{t}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		require.NoError(t, err, "child as nobody")
	case <-time.After(10 * time.Second):
		require.Fail(t, "child as nobody not ready within 10s")
	}
	return cmd
}

// testWriter passes a child's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("child: %s", p)
	return len(p), nil
}

func uniqueAbstract(name string) string {
	return fmt.Sprintf("@portfor-%s-%d-%d", name, os.Getpid(), time.Now().UnixNano())
}
