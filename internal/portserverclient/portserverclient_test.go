package portserverclient_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portfor/portfor/internal/portserverclient"
)

// silentServer listens on a Unix socket in t's directory for a server the
// test keeps from answering. Ask needs a kernel that tells who runs it.
func silentServer(t *testing.T) (string, net.Listener) {
	t.Helper()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("Ask trusts a server only where the kernel tells who runs it")
	}
	addr := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	return addr, l
}

// A server that reads the pid and never answers must not hold Ask past its
// context's end, deadline or not: `portfor pick` passes a context that
// SIGTERM cancels and that has no deadline, and hung on such a server
// until killed a second time.
func TestAskEndsWhenItsContextIsCancelled(t *testing.T) {
	addr, l := silentServer(t)
	defer l.Close()
	asked := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = bufio.NewReader(c).ReadString('\n') // the pid; then silence
		asked <- c
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := portserverclient.Ask(ctx, addr, 4242)
		done <- err
	}()
	select {
	case c := <-asked:
		defer c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the server was never asked")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Ask = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Ask still waits for a silent server after its context was cancelled")
	}
}

// A silent server holds Ask until its context's deadline, and the error
// says that the deadline ended the wait (errors.Is DeadlineExceeded), even
// when the connection's own deadline, the same instant, is seen first:
// `portfor pick` tells "no answer within --timeout" by it.
func TestAskEndsAtItsDeadline(t *testing.T) {
	addr, l := silentServer(t)
	conns := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c // held open, never answered
		}
	}()
	defer func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	}()
	for range 20 { // the two deadlines race: try it a few times
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := portserverclient.Ask(ctx, addr, 4242)
		cancel()
		// Most often "no answer"; on a loaded machine the deadline may
		// come while connecting or writing the request instead.
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Ask = %v, want an error wrapping context.DeadlineExceeded", err)
		}
		if !strings.HasPrefix(err.Error(), "port server "+addr+": ") {
			t.Fatalf("Ask = %v, want it to name the server", err)
		}
	}
}
