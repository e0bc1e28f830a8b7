//go:build linux

package main

// What a hostile review of waits and serve found: text a server chose
// reaching the terminal, deadlines and queries that could not be passed on,
// passwords in errors, one failed target holding up the others, and
// descriptors of the Go runtime taken for a parent's.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// controlBytes returns the control bytes (C0 but newline, and DEL) in s.
func controlBytes(s string) []byte {
	var bad []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\n') || c == 0x7f {
			bad = append(bad, c)
		}
	}
	return bad
}

// tlsServerWithNames serves TLS on 127.0.0.1 with a self-signed
// certificate for dnsNames, and returns its port.
func tlsServerWithNames(t *testing.T, dnsNames ...string) int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edges"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dnsNames, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
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
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				_, _ = c.Read(buf) // the handshake fails on the client's side first
				_, _ = c.Write([]byte("HTTP/1.1 503 Nope\r\n\r\n"))
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// TestWaitHTTPSEdges builds portfor-https once for the https cases.
func TestWaitHTTPSEdges(t *testing.T) {
	helper := buildHTTPSHelper(t)

	// Any server on the URL's port chooses the names in its certificate,
	// and Go's x509 error lists them as they are (IA5: ESC and BEL
	// included), before it checks who signed them: they must reach the
	// terminal escaped, not as sequences that set its title or clear it.
	t.Run("certificate names are escaped", func(t *testing.T) {
		t.Setenv("PORTFOR_HTTPS", helper)
		port := tlsServerWithNames(t, "a\x1b]0;PWNED\x07\x1b[2Jb")
		o := portfor(t, newDB(t), "wait", "-q", "-t", "1", fmt.Sprintf("https://localhost:%d/", port))
		assert.Equal(t, 1, o.code)
		assert.Contains(t, o.stderr, "certificate")
		assert.Empty(t, controlBytes(o.stderr), "stderr carries the server's control bytes: %q", o.stderr)
	})

	// -t beyond the year 2262 (2,200,000 h, about 251 years, is accepted):
	// the deadline cannot be handed to the helper in Unix nanoseconds, so
	// it goes as a duration; the helper must not give up at once.
	t.Run("a far deadline reaches the helper", func(t *testing.T) {
		t.Setenv("PORTFOR_HTTPS", helper)
		mute, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer mute.Close()
		cmd := command(t, newDB(t), "wait", "-q", "-t", "2200000h", "https://"+mute.Addr().String()+"/")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := mute.Accept(); err == nil {
				accepted <- c
			}
		}()
		select {
		case err := <-done:
			assert.Fail(t, "the wait ended before the helper tried", "%v: %s", err, stderr.String())
		case c := <-accepted: // the helper is waiting, as told
			c.Close()
			_ = cmd.Process.Signal(os.Interrupt)
			<-done
		}
	})
}

// A query with a space or a byte beyond ASCII is sent percent-encoded: the
// request line cannot carry it raw, and refusing it on every try spent the
// whole timeout like a server that never came.
func TestWaitOnAURLWithASpaceInItsQuery(t *testing.T) {
	db := newDB(t)
	seen := make(chan string, 10)
	port := httpServer(t, func(_ http.ResponseWriter, r *http.Request) { seen <- r.URL.RawQuery })
	for u, want := range map[string]string{
		fmt.Sprintf("http://127.0.0.1:%d/health?q=a b", port): "q=a%20b",
		fmt.Sprintf("http://127.0.0.1:%d/health?q=é", port):   "q=%C3%A9",
	} {
		o := portfor(t, db, "wait", "-t", "30", u)
		assert.Equal(t, outcome{"", "", 0}, o, u)
		assert.Equal(t, want, <-seen, u)
	}
}

// The password of a URL is not printed in the error (nor the progress
// line): CI logs keep them.
func TestWaitDoesNotPrintThePassword(t *testing.T) {
	port := httpServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	o := portfor(t, newDB(t), "wait", "-t", "0.2", fmt.Sprintf("http://admin:s3cret@127.0.0.1:%d/", port))
	assert.Equal(t, 1, o.code)
	assert.NotContains(t, o.stderr, "s3cret")
	assert.Contains(t, o.stderr, "http://admin:xxxxx@127.0.0.1:")
}

// One target that fails for good (here a datagram socket: "protocol wrong
// type for socket") ends the wait at once, the others with it, and the
// error is that target's, not the others' "canceled". (A wait that went on
// would end at -t with the other target's timeout in the message.)
func TestWaitStopsAtAPermanentError(t *testing.T) {
	dg := filepath.Join(sockDir(t), "dg.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dg, Net: "unixgram"})
	require.NoError(t, err)
	defer c.Close()
	db := newDB(t)
	o := portfor(t, db, "wait", "-q", "-t", "60", "unix:"+dg, "127.0.0.1:"+strconv.Itoa(freePort(t)))
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, `^portfor: wait for unix:\S+ to be occupied: connect unix:\S+: .*protocol wrong type for socket\n$`, o.stderr)
}

// The Go runtime (1.25 and later, on Linux) opens its cgroup's CPU limit
// files at start and keeps them open: on a process started without
// descriptors 3 and 4, they are 3 and 4, open for reading. --ready-fd must
// not take such a descriptor for its parent's (serve bound, told systemd
// READY=1, then failed to write, and closed the runtime's file), and
// LISTEN_FDS with nothing passed must not be taken for a socket.
func TestServeTakesOnlyItsParentsDescriptors(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "serve", "--address", fmt.Sprintf("@portfor-edges-%d", os.Getpid()), "--ready-fd", "3")
	assert.Equal(t, 2, o.code)
	assert.Regexp(t, `^portfor: --ready-fd 3: not an open file descriptor( for writing .*)? \(try 'portfor serve --help'\)\n$`, o.stderr)

	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve --address @portfor-edges-unused`, os.Args[0])
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_AS_CLI=1", "PORTFOR_DB="+db)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Regexp(t, `descriptor 3 is not open|\(fd 3\): not a socket`, string(out))
}

// The helper's stderr is not passed through: a portfor-https of another
// version that does not know -report or -deadline (a PATH with an older
// one, an upgrade of one binary only) would print its whole usage before
// portfor's line. Its first line is quoted in portfor's one line.
func TestWaitHTTPSHelperStderrStaysOneLine(t *testing.T) {
	helper := filepath.Join(t.TempDir(), "helper")
	require.NoError(t, os.WriteFile(helper, []byte("#!/bin/sh\necho 'flag provided but not defined: -report' >&2\necho 'usage: portfor-https [-t DURATION] URL' >&2\nexit 2\n"), 0o755))
	t.Setenv("PORTFOR_HTTPS", helper)
	o := portfor(t, newDB(t), "wait", "-q", "-t", "5", "https://localhost:1/")
	assert.Equal(t, 1, o.code)
	assert.Equal(t, 1, strings.Count(o.stderr, "\n"), "stderr: %q", o.stderr)
	assert.Contains(t, o.stderr, `ended without an answer: exit status 2 (it said "flag provided but not defined: -report")`)
}
