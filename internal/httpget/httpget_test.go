package httpget_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/httpget"
	_ "github.com/portfor/portfor/registry/https"
)

func addrOf(t *testing.T, l net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(l.String())
	require.NoError(t, err)
	return ap
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStatusAsksAsTold(t *testing.T) {
	seen := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(strings.Repeat("body ", 100000))) // never read
	}))
	defer srv.Close()
	code, err := httpget.Status(timeout(t, 10*time.Second), httpget.Request{
		Addr: addrOf(t, srv.Listener.Addr()), Host: "example.test:8080", Target: "/health?full=1&x=%20",
		UserAgent: "portfor-wait", Authorization: "Basic dXNlcjpwdw==",
	})
	require.NoError(t, err)
	assert.Equal(t, 418, code)
	r := <-seen
	assert.Equal(t, "GET", r.Method)
	assert.Equal(t, "example.test:8080", r.Host)
	assert.Equal(t, "/health?full=1&x=%20", r.RequestURI)
	assert.Equal(t, "portfor-wait", r.UserAgent())
	user, pw, ok := r.BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "user/pw", user+"/"+pw)
	assert.True(t, r.Close, "Connection: close")
	assert.Equal(t, "HTTP/1.1", r.Proto)
}

func TestStatusOverTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	req := httpget.Request{Addr: addrOf(t, srv.Listener.Addr()), Host: "example.com", Target: "/", TLS: &httpget.TLS{ServerName: "example.com"}}

	saved := httpget.TLSClient
	defer func() { httpget.TLSClient = saved }()
	httpget.TLSClient = nil
	_, err := httpget.Status(timeout(t, 10*time.Second), req)
	assert.ErrorIs(t, err, httpget.ErrNoTLS, "no TLS client linked")

	httpget.TLSClient = saved // registry/https's
	_, err = httpget.Status(timeout(t, 10*time.Second), req)
	assert.ErrorContains(t, err, "certificate", "a certificate nobody trusts")
	req.TLS.Insecure = true
	code, err := httpget.Status(timeout(t, 10*time.Second), req)
	require.NoError(t, err)
	assert.Equal(t, 204, code)

	// A client that trusts the test certificate verifies it for the name
	// it is given.
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	httpget.TLSClient = func(ctx context.Context, conn net.Conn, o httpget.TLS) (net.Conn, error) {
		tc := tls.Client(conn, &tls.Config{ServerName: o.ServerName, RootCAs: roots, InsecureSkipVerify: o.Insecure})
		return tc, tc.HandshakeContext(ctx)
	}
	req.TLS = &httpget.TLS{ServerName: "example.com"}
	code, err = httpget.Status(timeout(t, 10*time.Second), req)
	require.NoError(t, err)
	assert.Equal(t, 204, code)
	req.TLS.ServerName = "other.example"
	_, err = httpget.Status(timeout(t, 10*time.Second), req)
	assert.ErrorContains(t, err, "certificate is valid for")
}

// rawServer answers every connection with script, after reading the request.
func rawServer(t *testing.T, script func(c net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for { // the request, up to its empty line
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				script(c)
			}()
		}
	}()
	return addrOf(t, l.Addr())
}

func write(s string) func(net.Conn) {
	return func(c net.Conn) { _, _ = io.WriteString(c, s) }
}

func TestStatusOfOddAnswers(t *testing.T) {
	good := map[string]int{
		"HTTP/1.1 200 OK\r\n\r\n": 200,
		"HTTP/1.0 503\r\n\r\n":    503,
		"HTTP/1.1 200 OK\n\n":     200, // bare LF
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n":         204,
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 302 X\r\n\r\n": 302,
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n":               101,
		"HTTP/1.1 200 \x1b[31mred\x1b[0m\r\n\r\n":                              200,
	}
	for answer, want := range good {
		code, err := httpget.Status(timeout(t, 10*time.Second), httpget.Request{Addr: rawServer(t, write(answer)), Host: "h", Target: "/"})
		require.NoError(t, err, "%q", answer)
		assert.Equal(t, want, code, "%q", answer)
	}
	bad := map[string]string{
		"":                                "connection closed without a final answer",
		"SSH-2.0-OpenSSH_9.6\r\n":         `status line "SSH-2.0-OpenSSH_9.6"`,
		"HTTP/1.1 999 Odd\r\n\r\n":        "status 999",
		"HTTP/1.1 20 OK\r\n\r\n":          "status line",
		"HTTP/1.1 2000 OK\r\n\r\n":        "status line",
		"HTTP/2 200\r\n\r\n":              "status line",
		"HTTP/1.1 100 Continue\r\n":       "connection closed without a final answer",
		"HTTP/1.1 200":                    "", // the last bytes count as a line: 200
		strings.Repeat("x", 100) + "\r\n": `status line "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"…`,
		strings.Repeat("HTTP/1.1 100 C\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\n\r\n": "more than 5 informational answers",
	}
	for answer, want := range bad {
		_, err := httpget.Status(timeout(t, 10*time.Second), httpget.Request{Addr: rawServer(t, write(answer)), Host: "h", Target: "/"})
		require.Error(t, err, "%q", answer)
		assert.ErrorIs(t, err, httpget.ErrMalformed, "%q", answer)
		assert.Contains(t, err.Error(), want, "%q", answer)
		assert.NotContains(t, err.Error(), "\n", "one line")
	}
}

func TestStatusBoundsHostileServers(t *testing.T) {
	endless := func(prefix string) func(net.Conn) {
		return func(c net.Conn) {
			_, _ = io.WriteString(c, prefix)
			chunk := []byte(strings.Repeat("a", 4096))
			for i := 0; i < 1000; i++ { // 4 MB at most: far past the limit
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	for name, script := range map[string]func(net.Conn){
		"endless status line": endless("HTTP/1.1 200 "),
		"endless 1xx header":  endless("HTTP/1.1 100 Continue\r\nX: "),
		"endless 1xx headers": func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n")
			for i := 0; i < 100000; i++ {
				if _, err := io.WriteString(c, "X-A: b\r\n"); err != nil {
					return
				}
			}
		},
	} {
		_, err := httpget.Status(timeout(t, 30*time.Second), httpget.Request{Addr: rawServer(t, script), Host: "h", Target: "/"})
		assert.ErrorIs(t, err, httpget.ErrMalformed, name)
		assert.ErrorContains(t, err, "longer than 65536 bytes", name)
	}

	// A server that accepts and then says nothing, or drips a byte at a
	// time, is cut off when the context ends.
	hold := make(chan struct{})
	defer close(hold)
	silent := rawServer(t, func(net.Conn) { <-hold })
	drip := rawServer(t, func(c net.Conn) {
		for _, b := range []byte("HTTP/1.1 200 OK\r\n") {
			select {
			case <-hold:
				return
			case <-time.After(20 * time.Millisecond): // the server's pace, not the test's synchronisation
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
		<-hold
	})
	for name, addr := range map[string]netip.AddrPort{"silent": silent, "drip": drip} {
		ctx := timeout(t, 50*time.Millisecond)
		_, err := httpget.Status(ctx, httpget.Request{Addr: addr, Host: "h", Target: "/"})
		assert.ErrorIs(t, err, context.DeadlineExceeded, name)
	}

	// Canceling ends it as well, deadline or not.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := httpget.Status(ctx, httpget.Request{Addr: silent, Host: "h", Target: "/"})
		done <- err
	}()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

func TestStatusRefusesRequestsThatWouldSplit(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:1")
	for _, r := range []httpget.Request{
		{Addr: addr, Host: "h\r\nX-Evil: 1", Target: "/"},
		{Addr: addr, Host: "h", Target: "/a b"},
		{Addr: addr, Host: "h", Target: "/a\nb"},
		{Addr: addr, Host: "h", Target: "a"},
		{Addr: addr, Host: "", Target: "/"},
		{Addr: addr, Host: "h", Target: "/", UserAgent: "x\r\n"},
		{Addr: addr, Host: "h", Target: "/", Authorization: "Basic x\r\nX: y"},
		{Host: "h", Target: "/"},
	} {
		_, err := httpget.Status(context.Background(), r)
		require.Error(t, err, "%+v", r)
		assert.False(t, errors.Is(err, httpget.ErrMalformed), "the request is refused, not the answer")
	}
}

func TestStatusText(t *testing.T) {
	assert.Equal(t, "Service Unavailable", httpget.StatusText(503))
	assert.Equal(t, "OK", httpget.StatusText(200))
	assert.Equal(t, "", httpget.StatusText(299))
}

func FuzzReadStatus(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 503\n", "SSH-2.0\r\n", "", "HTTP/1.1 1000 x", "HTTP/1.1 101 Switching\r\n",
		"HTTP/1.1 103 Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := httpget.ReadStatus(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			assert.ErrorIs(t, err, httpget.ErrMalformed)
			assert.NotContains(t, err.Error(), "\n")
			return
		}
		assert.True(t, code == 101 || (code >= 200 && code <= 599), "final status %d", code)
		assert.Contains(t, s, "HTTP/1.")
	})
}
