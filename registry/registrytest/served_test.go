package registrytest_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portfor/portfor/registry/registrytest"
)

// protoServer answers portpicker's protocol with the ports it was given,
// in order, and notes the pids asked for. (The real `portfor serve` is
// tested with registrytest in cmd/portfor/internal/portserver.)
type protoServer struct {
	addr string
	mu   sync.Mutex
	next []int
	pids []int
}

func startProtoServer(t *testing.T, ports []int) *protoServer {
	t.Helper()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the client trusts a port server only where the kernel tells who runs it")
	}
	s := &protoServer{addr: filepath.Join(t.TempDir(), "ps.sock"), next: ports}
	l, err := net.Listen("unix", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			pid, _ := strconv.Atoi(strings.TrimSpace(line))
			s.mu.Lock()
			s.pids = append(s.pids, pid)
			if len(s.next) > 0 {
				fmt.Fprintf(c, "%d\n", s.next[0])
				s.next = s.next[1:]
			}
			s.mu.Unlock()
			c.Close()
		}
	})
	return s
}

func (s *protoServer) asked() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pids)
}

func TestPortAsksThePortServerAndReusesWhatTestsGaveBack(t *testing.T) {
	free := registrytest.Ports(t, 4) // from the registry: the server's pool
	s := startProtoServer(t, free)
	t.Setenv("PORTSERVER_ADDRESS", s.addr)

	t.Run("first", func(t *testing.T) {
		if p := registrytest.Port(t); p != free[0] {
			t.Errorf("port %d, want the server's %d", p, free[0])
		}
	})
	if got := s.asked(); !slices.Equal(got, []int{os.Getpid()}) {
		t.Fatalf("the server was asked for pids %v, want this process's, %d", got, os.Getpid())
	}
	t.Run("again", func(t *testing.T) {
		got := registrytest.Ports(t, 2)
		if !slices.Equal(got, free[:2]) {
			t.Errorf("ports %v, want %v: the one given back, then a new one", got, free[:2])
		}
	})
	if n := len(s.asked()); n != 2 {
		t.Errorf("the server was asked %d times in all, want 2", n)
	}
	t.Run("listener", func(t *testing.T) {
		l := registrytest.Listener(t)
		if p := l.Addr().(*net.TCPAddr).Port; !slices.Contains(free[:2], p) {
			t.Errorf("listening on %d, want a port from the server, one of %v", p, free[:2])
		}
	})
}

func TestAPortStillHeldIsNotHandedOutAgain(t *testing.T) {
	free := registrytest.Ports(t, 2)
	s := startProtoServer(t, free)
	t.Setenv("PORTSERVER_ADDRESS", s.addr)
	var leaked net.Listener
	t.Run("leaks its server", func(t *testing.T) {
		port := registrytest.Port(t)
		var err error
		if leaked, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			t.Fatal(err)
		}
	})
	defer leaked.Close()
	t.Run("next", func(t *testing.T) {
		if p := registrytest.Port(t); p != free[1] {
			t.Errorf("port %d, want a new one from the server, %d", p, free[1])
		}
	})
}

func TestWithoutAnAnswerTheRegistryServes(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the client trusts a port server only where the kernel tells who runs it")
	}
	s := startProtoServer(t, nil) // answers nothing
	t.Setenv("PORTSERVER_ADDRESS", s.addr)
	var port int
	t.Run("test", func(t *testing.T) {
		port = registrytest.Port(t)
		if _, ok := leases(t)[port]; !ok {
			t.Errorf("port %d is not a lease in the registry", port)
		}
	})
	if len(s.asked()) != 1 {
		t.Errorf("the server was asked %d times, want 1", len(s.asked()))
	}
	t.Setenv("PORTSERVER_ADDRESS", filepath.Join(t.TempDir(), "none.sock")) // no server at all
	if p := registrytest.Port(t); p == 0 {
		t.Error("no port")
	}
}

// hold binds port on 127.0.0.1 for proto ("tcp" or "udp") until the test
// ends: another program's server on a port the port server hands out.
func hold(t *testing.T, proto string, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var c interface{ Close() error }
	var err error
	if proto == "udp" {
		c, err = net.ListenPacket("udp4", addr)
	} else {
		c, err = net.Listen("tcp4", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func TestAPortServerPortInUseIsNotHandedOut(t *testing.T) {
	free := registrytest.Ports(t, 3)
	hold(t, "tcp", free[0])
	hold(t, "udp", free[1])
	s := startProtoServer(t, free)
	t.Setenv("PORTSERVER_ADDRESS", s.addr)
	t.Run("test", func(t *testing.T) {
		if p := registrytest.Port(t); p != free[2] {
			t.Errorf("port %d, want %d: the server's %d (TCP) and %d (UDP) are in use", p, free[2], free[0], free[1])
		}
	})
	if n := len(s.asked()); n != 3 {
		t.Errorf("the server was asked %d times, want 3", n)
	}
}

// TestAPortServerOfPortsInUseFailsTheTest runs TestBusyServerChild against
// a port server that hands out one port in use, again and again: the
// child asks a bounded number of times, then fails saying why.
func TestAPortServerOfPortsInUseFailsTheTest(t *testing.T) {
	busy := registrytest.Port(t)
	hold(t, "tcp", busy)
	s := startProtoServer(t, slices.Repeat([]int{busy}, 50))
	out, err := childTest(t.Context(), "TestBusyServerChild", "busy-server", []string{"PORTSERVER_ADDRESS=" + s.addr}).CombinedOutput()
	if err == nil {
		t.Fatalf("the child passed:\n%s", out)
	}
	want := fmt.Sprintf("registrytest: port server %s handed out only ports in use", s.addr)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), strconv.Itoa(busy)) {
		t.Errorf("the child's failure does not say %q and name port %d:\n%s", want, busy, out)
	}
	if n := len(s.asked()); n < 2 || n >= 50 {
		t.Errorf("the server was asked %d times, want a few", n)
	}
}

// TestBusyServerChild asks for a port (see
// TestAPortServerOfPortsInUseFailsTheTest).
func TestBusyServerChild(t *testing.T) {
	if os.Getenv(childEnv) != "busy-server" {
		t.Skip("a child of TestAPortServerOfPortsInUseFailsTheTest")
	}
	port := registrytest.Port(t)
	t.Errorf("got port %d", port)
}
