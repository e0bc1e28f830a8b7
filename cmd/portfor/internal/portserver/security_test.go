//go:build linux

package portserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/registry"
)

// Another user who binds the port server's name first must not be
// believed: Ask checks who runs the server before it sends anything.
func TestAskTrustsOnlyAServerOfItsUserOrRoot(t *testing.T) {
	needRoot(t)
	addr := uniqueAbstract("squat")
	squatter := asNobody(t, "PORTSERVER_TEST_SQUAT="+addr, "PORTSERVER_TEST_ANSWER=15000\n")
	p, err := ask(t, addr, os.Getpid())
	require.Error(t, err, "asked a squatter, got port %d", p)
	assert.Contains(t, err.Error(), fmt.Sprintf("run by uid 65534 (nobody), pid %d", squatter.Process.Pid))
	assert.NotContains(t, err.Error(), "\n")
}

// A server of the caller's own may still answer nonsense: privileged ports
// are never taken from it.
func TestAskRefusesPrivilegedPorts(t *testing.T) {
	for answer, ok := range map[string]bool{"22\n": false, "1023\n": false, "1024\n": true, "0\n": false} {
		addr := filepath.Join(t.TempDir(), "s.sock")
		l, err := net.Listen("unix", addr)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := l.Accept()
			if err == nil {
				_, _ = bufio.NewReader(c).ReadString('\n') // the request
				fmt.Fprint(c, answer)
				c.Close()
			}
		}()
		p, err := ask(t, addr, os.Getpid())
		if ok {
			assert.NoError(t, err, "answer %q", answer)
			assert.Equal(t, 1024, p)
		} else {
			assert.Error(t, err, "answer %q taken as port %d", answer, p)
		}
		<-done
		l.Close()
	}
}

// When another user holds the address, the error says who.
func TestListenNamesTheHolder(t *testing.T) {
	needRoot(t)
	addr := uniqueAbstract("held")
	squatter := asNobody(t, "PORTSERVER_TEST_SQUAT="+addr, "PORTSERVER_TEST_ANSWER=22\n")
	_, _, err := portserver.Listen(addr, 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("uid 65534 (nobody), pid %d holds it", squatter.Process.Pid))

	path := filepath.Join(openDir(t, 0o777), "s.sock")
	squatter = asNobody(t, "PORTSERVER_TEST_SQUAT="+path, "PORTSERVER_TEST_ANSWER=22\n")
	_, _, err = portserver.Listen(path, 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("a server of uid 65534 (nobody), pid %d is already answering", squatter.Process.Pid))
}

// Where the kernel cannot tell who a client is, a server run by root
// refuses everyone: it cannot know whose processes a client may ask for.
func TestUnknownClientsAreRefusedByRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the refusal tested here is a root server's; an unprivileged one is tested by TestUnknownClientsOfAPrivateServer")
	}
	restore := portserver.HideClientCredentials()
	defer restore()
	s := startServer(t, t.TempDir(), time.Second)
	assert.Equal(t, "", raw(t, s.addr, fmt.Appendf(nil, "%d\n", os.Getpid()), true), "no port for a client nobody can tell")
	require.NoError(t, s.stop())
	assert.Contains(t, s.log.String(), "refused: cannot tell who the client is, and a server run by root")
}

// The exception: an unprivileged server on a socket only its user may open
// serves that user's processes, and only those, without credentials.
func TestUnknownClientsOfAPrivateServer(t *testing.T) {
	needRoot(t)
	for mode, private := range map[string]bool{"600": true, "660": false} {
		dir := openDir(t, 0o700)
		require.NoError(t, os.Chown(dir, nobody, nobody))
		srv := asNobody(t, "PORTSERVER_TEST_SERVE="+dir, "PORTSERVER_TEST_MODE="+mode)
		sock := filepath.Join(dir, "s.sock")
		// The child's own pid is nobody's: the server's user.
		out := raw(t, sock, fmt.Appendf(nil, "%d\n", srv.Process.Pid), true)
		if private {
			assert.Regexp(t, `^\d+\n$`, out, "mode %s: a port for its own user's process", mode)
		} else {
			assert.Equal(t, "", out, "mode %s: others may connect, so no one is served", mode)
		}
		assert.Equal(t, "", raw(t, sock, fmt.Appendf(nil, "%d\n", os.Getpid()), true), "mode %s: root's process is not the server user's", mode)
	}
}

// The log is one line per request, whatever a client puts in its command
// line, and never ends in a formatted nil error.
func TestLogIsOneLinePerRequest(t *testing.T) {
	s := startServer(t, t.TempDir(), time.Second)
	forged := "\n2026-01-01T00:00:00Z pid 1: port 22 (sshd)\x1b[2K\r"
	client := exec.Command("sh", "-c", "read x", "sh"+forged)
	stdin, err := client.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, client.Start())
	defer func() { stdin.Close(); _ = client.Wait() }()
	_, err = ask(t, s.addr, client.Process.Pid)
	require.NoError(t, err)
	raw(t, s.addr, []byte("x\x1b[31m\r\n"), true)
	require.NoError(t, s.stop())

	log := s.log.String()
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	require.Len(t, lines, 2, "two requests, two lines:\n%s", log)
	record := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ (pid \d+|refused)`)
	for _, l := range lines {
		assert.Regexp(t, record, l)
		assert.NotContains(t, l, "\r")
		assert.NotContains(t, l, "\x1b")
		assert.NotContains(t, l, "<nil>")
	}
	assert.Contains(t, log, fmt.Sprintf(`pid %d: port `, client.Process.Pid))
	assert.Contains(t, log, `\n2026-01-01T00:00:00Z pid 1: port 22`, "the command line, quoted")
}

// One Server may serve two listeners at once: Serve keeps its run's state
// to itself (run with -race).
func TestOneServerTwoListeners(t *testing.T) {
	dir := t.TempDir()
	reg, err := registry.Open(filepath.Join(dir, "r.db"), registry.Options{})
	require.NoError(t, err)
	srv := &portserver.Server{Registry: reg}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var addrs []string
	for i := range 2 {
		addr := filepath.Join(dir, strconv.Itoa(i)+".sock")
		l, closeFn, err := portserver.Listen(addr, 0)
		require.NoError(t, err)
		defer closeFn()
		addrs = append(addrs, addr)
		wg.Go(func() { assert.NoError(t, srv.Serve(ctx, l)) })
	}
	seen := map[int]bool{}
	for range 5 {
		for _, addr := range addrs {
			p, err := ask(t, addr, os.Getpid())
			require.NoError(t, err)
			assert.False(t, seen[p], "port %d twice", p)
			seen[p] = true
		}
	}
	cancel()
	wg.Wait()
}
