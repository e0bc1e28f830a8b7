//go:build linux

package portserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/registry"
)

// FuzzServerRequest sends arbitrary bytes to a running server, as a client
// would, and checks that the answer is nothing or one port and a newline,
// that a port comes only for a request naming a live process other than
// init, and that the server keeps serving.
func FuzzServerRequest(f *testing.F) {
	for _, s := range []string{fmt.Sprintf("%d\n", os.Getpid()), "", "\n", "1\n", "0", "-1\n", "abc", "99999999999\n",
		strings.Repeat("9", 40), fmt.Sprintf(" %d \r\n", os.Getpid()), "\x00\x01", fmt.Sprintf("%d", os.Getpid())} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	reg, err := registry.Open(filepath.Join(dir, "r.db"), registry.Options{})
	if err != nil {
		f.Fatal(err)
	}
	addr := filepath.Join(dir, "s.sock")
	l, closeFn, err := portserver.Listen(addr, 0)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&portserver.Server{Registry: reg, ReadTimeout: 50 * time.Millisecond}).Serve(ctx, l) }()
	f.Cleanup(func() { cancel(); <-done; closeFn() })

	f.Fuzz(func(t *testing.T, req []byte) {
		c, err := net.Dial("unix", addr)
		if err != nil {
			t.Fatalf("server stopped answering: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(req)
		_ = c.(*net.UnixConn).CloseWrite()
		out, err := io.ReadAll(c)
		if errors.Is(err, syscall.ECONNRESET) {
			return // closed with the rest of an oversized request unread: no answer
		}
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if len(out) == 0 {
			return
		}
		port, err := strconv.Atoi(strings.TrimSuffix(string(out), "\n"))
		if err != nil || !strings.HasSuffix(string(out), "\n") || port < registry.MinPort || port > 65535 {
			t.Fatalf("answer %q to %q", out, req)
		}
		// The server reads up to the first newline (at most MaxRequest+1 bytes).
		line := req[:min(len(req), portserver.MaxRequest+1)]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		pid, err := portserver.ParseRequest(line)
		if err != nil || pid <= 1 {
			t.Fatalf("a port for a request that is not a good pid: %q", req)
		}
		_, _ = reg.ReleasePort(context.Background(), port) // keep the pool from filling up
	})
}
