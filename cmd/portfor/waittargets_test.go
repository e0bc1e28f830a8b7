//go:build unix

package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
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

func TestWaitHelp(t *testing.T) {
	db := newDB(t)
	for _, args := range [][]string{{"wait", "--help"}, {"wait", "-h"}, {"wait", "8080", "-h"}, {"help", "wait"}} {
		o := portfor(t, db, args...)
		assert.Equal(t, 0, o.code, "%q: %s", args, o.stderr)
		assert.Empty(t, o.stderr, "%q", args)
		assert.Contains(t, o.stdout, "portfor wait [command options] TARGET...", "%q", args)
		for _, flag := range []string{"--timeout DURATION, -t DURATION", "--quiet, -q", "--status LIST", "--insecure", "unix:/PATH", "NAME/PATH"} {
			assert.Contains(t, o.stdout, flag, "%q", args)
		}
	}
	o := portfor(t, db, "help", "check")
	assert.Contains(t, o.stdout, "http(s):// URL")
	_, err := os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "help writes nothing")
}

func TestWaitAndCheckUsageErrors(t *testing.T) {
	db := newDB(t)
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"check", "65536"}, `invalid port "65536": want a number from 1 to 65535 (try 'portfor check --help')`},
		{[]string{"check", "0"}, `invalid port "0": want a number from 1 to 65535 (try 'portfor check --help')`},
		{[]string{"check", "host:http"}, `invalid address "host:http": port "http" is not a number from 1 to 65535 (try 'portfor check --help')`},
		{[]string{"check", "--udp", "unix:/x.sock"}, `--udp needs a port or host:port, not unix:/x.sock (try 'portfor check --help')`},
		{[]string{"wait", "0"}, `invalid port "0": want a number from 1 to 65535 (try 'portfor wait --help')`},
		{[]string{"wait", "65536", "free"}, `invalid port "65536": want a number from 1 to 65535 (try 'portfor wait --help')`},
		{[]string{"wait", "localhost:5432", "occupied", "free"}, `two states, occupied and free: give one, last (try 'portfor wait --help')`},
		{[]string{"wait", "http://localhost:0/"}, `invalid address "http://localhost:0/": port "0" is not a number from 1 to 65535 (try 'portfor wait --help')`},
		{[]string{"wait", "http://::1/"}, `an IPv6 address needs brackets, as in http://[::1]:8080/ (try 'portfor wait --help')`},
		{[]string{"wait", "unix:"}, `invalid address "unix:": no socket path after unix: (try 'portfor wait --help')`},
		{[]string{"wait", "8080", "--status", "200"}, `--status applies to http:// and https:// TARGETs, waited for until occupied (try 'portfor wait --help')`},
		{[]string{"wait", "http://localhost:1/", "free", "--status", "200"}, `--status applies to http:// and https:// TARGETs, waited for until occupied (try 'portfor wait --help')`},
		{[]string{"wait", "http://localhost:1/", "--status", "20"}, `--status: invalid status list "20": "20" is not a status code from 100 to 599 (try 'portfor wait --help')`},
		{[]string{"wait", "http://localhost:1/", "--insecure"}, `--insecure needs an https:// TARGET (try 'portfor wait --help')`},
		{[]string{"find", "1-x"}, `invalid port: invalid port list "1-x": "x" is not a port (1-65535) (try 'portfor find --help')`},
		{[]string{"find"}, `missing RANGE (try 'portfor find --help')`},
	}
	for _, tt := range tests {
		o := portfor(t, db, tt.args...)
		assert.Equal(t, 2, o.code, "portfor %q: %s", tt.args, o.stderr)
		assert.Empty(t, o.stdout, "portfor %q", tt.args)
		assert.True(t, strings.HasPrefix(o.stderr, "portfor: ") && strings.HasSuffix(o.stderr, tt.stderr+"\n"), "portfor %q: %q", tt.args, o.stderr)
	}
	_, err := os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "usage errors write nothing")

	// A last word that is no state and no name: a usage error naming the states.
	o := portfor(t, db, "wait", "8080", "bogusstate")
	assert.Equal(t, outcome{"", `portfor: "bogusstate" is not a state (occupied|free) nor a registered name (try 'portfor wait --help')` + "\n", 2}, o)
	// A lone name that is not registered: not found, exit 1.
	for _, cmd := range []string{"wait", "check"} {
		o = portfor(t, db, cmd, "nope")
		assert.Equal(t, outcome{"", `portfor: "nope" is neither a registered name nor a host:port` + "\n", 1}, o, cmd)
	}
	o = portfor(t, db, "wait", "nope/health")
	assert.Equal(t, outcome{"", `portfor: "nope" is neither a registered name nor a host:port` + "\n", 1}, o)
}

func TestWaitCommandThatCannotStart(t *testing.T) {
	db := newDB(t)
	_, busy := listen(t, "tcp4", "127.0.0.1:0")
	p := strconv.Itoa(busy)
	o := portfor(t, db, "wait", p, "--", "portfor-no-such-command")
	assert.Equal(t, outcome{"", "portfor: portfor-no-such-command: command not found\n", 127}, o)

	dir := t.TempDir()
	plain := filepath.Join(dir, "not-executable")
	require.NoError(t, os.WriteFile(plain, []byte("#!/bin/sh\necho hi\n"), 0o644))
	o = portfor(t, db, "wait", p, "--", plain)
	assert.Equal(t, outcome{"", "portfor: " + plain + ": permission denied (not an executable file)\n", 126}, o)
	o = portfor(t, db, "wait", p, "--", dir)
	assert.Equal(t, 126, o.code, o.stderr)
	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("\x00\x01\x02\x03 not a program"), 0o755))
	o = portfor(t, db, "wait", p, "--", garbage)
	assert.Equal(t, outcome{"", "portfor: " + garbage + ": exec format error (not a program this system can run)\n", 126}, o)
}

// httpServer serves h on 127.0.0.1 and returns its port.
func httpServer(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func TestWaitForHTTP(t *testing.T) {
	db := newDB(t)
	ok := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/", http.StatusFound)
		}
	})
	unavailable := httpServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	url := func(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }

	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", url(ok, "/health")))
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", url(ok, "/moved"), "-q"), "a 3xx is below 400")
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", url(ok, "/"), "--status", "200-299", "--", "true"))

	o := portfor(t, db, "wait", "-t", "0.1", url(unavailable, "/health"))
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, `^portfor: http://127\.0\.0\.1:\d+/health not ready \(waited \d+ms\): last answer 503 Service Unavailable\.\n$`, o.stderr)
	o = portfor(t, db, "wait", "-t", "0.1", "--status", "200", url(ok, "/moved"))
	assert.Contains(t, o.stderr, "last answer 302 Found.")
	o = portfor(t, db, "wait", "-t", "0.05", url(freePort(t), "/"))
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "last connection refused.")

	// HTTP_PROXY must not take a wait on loopback elsewhere.
	cmd := command(t, db, "wait", "-t", "5", url(ok, "/"))
	cmd.Env = append(cmd.Env, "HTTP_PROXY=http://127.0.0.1:1", "http_proxy=http://127.0.0.1:1", "NO_PROXY=", "no_proxy=")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s", out)

	// NAME/path is http://localhost:PORT/path; check looks at the port.
	require.Equal(t, 0, portfor(t, db, "bind", "web", strconv.Itoa(unavailable)).code)
	o = portfor(t, db, "wait", "-t", "0.1", "web/ready")
	assert.Regexp(t, fmt.Sprintf(`^portfor: http://localhost:%d/ready not ready .*: last answer 503 Service Unavailable\.\n$`, unavailable), o.stderr)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", "web/ready", "--status", "503"))
	o = portfor(t, db, "check", "web/ready")
	assert.Equal(t, outcome{"occupied\n", o.stderr, 1}, o)
	assert.True(t, strings.HasPrefix(o.stderr, fmt.Sprintf("portfor: localhost:%d: occupied by %s (pid %d) in ", unavailable, program(), os.Getpid())), o.stderr)
	assert.Equal(t, outcome{"free\n", "", 0}, portfor(t, db, "check", url(freePort(t), "/")))
	o = portfor(t, db, "wait", "-t", "0.05", url(unavailable, "/"), "free")
	assert.Equal(t, 1, o.code, "a server answering 503 is not free")
	assert.Contains(t, o.stderr, "not free")
}

// buildHTTPSHelper builds cmd/portfor-https into a temporary directory.
func buildHTTPSHelper(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portfor-https")
	out, err := exec.Command("go", "build", "-o", bin, "../portfor-https").CombinedOutput()
	require.NoError(t, err, "build portfor-https: %s", out)
	return bin
}

func TestWaitForHTTPS(t *testing.T) {
	t.Setenv("PORTFOR_HTTPS", buildHTTPSHelper(t))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	db := newDB(t)
	o := portfor(t, db, "wait", "-t", "1", srv.URL)
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, `^portfor: https://127\.0\.0\.1:\d+/ not ready \(waited [\d.]+m?s\): last error: tls: failed to verify certificate: .*\n$`, o.stderr)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "wait", srv.URL, "--insecure", "--status", "200"))
	o = portfor(t, db, "wait", "-t", "0.3", srv.URL, "--insecure", "--status", "201")
	assert.Contains(t, o.stderr, "last answer 200 OK.", "--status reaches the helper")

	// Interrupted, the helper is stopped and the wait says so. The server
	// accepts and says nothing, so the helper is known to run once it has
	// a connection, and known to be gone when the connection closes.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer mute.Close()
	cmd := command(t, db, "wait", "-q", "-t", "60", "https://"+mute.Addr().String()+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	conn, err := mute.Accept()
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode(), stderr.String())
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.Copy(io.Discard, conn)
	assert.NoError(t, err, "the helper closed its connection: it has exited")
}

// TestWaitForHTTPSHelperAnswers: what portfor makes of each way the helper
// can end, with stand-ins written as shell scripts.
func TestWaitForHTTPSHelperAnswers(t *testing.T) {
	dir := t.TempDir()
	for answer, want := range map[string]outcome{
		`echo ready`:                            {"", "", 0},
		`echo "error wait for x: lookup: boom"`: {"", "portfor: wait for x: lookup: boom\n", 1},
		`echo "last answer 418 I'm a teapot"`:   {"", `portfor: https://localhost:1/ not ready \(waited [\d.]+m?s\): last answer 418 I'm a teapot\.\n`, 1},
		`echo nonsense; exit 3`:                 {"", `portfor: wait for https://localhost:1/: .*/helper ended without an answer: exit status 3\n`, 1},
		`kill -9 $$`:                            {"", `portfor: wait for https://localhost:1/: .*/helper ended without an answer: signal: killed\n`, 1},
		`case "$*" in "-report -deadline "*" -insecure -status 200,204 -- https://localhost:1/") echo ready;; *) echo "error args: $*";; esac`: {"", "", 0},
	} {
		helper := filepath.Join(dir, "helper")
		require.NoError(t, os.WriteFile(helper+".new", []byte("#!/bin/sh\n"+answer+"\n"), 0o755))
		require.NoError(t, os.Rename(helper+".new", helper))
		t.Setenv("PORTFOR_HTTPS", helper)
		args := []string{"wait", "-q", "-t", "30", "https://localhost:1/"}
		if strings.Contains(answer, "-insecure") {
			args = append(args, "--insecure", "--status", "200,204")
		}
		o := portfor(t, newDB(t), args...)
		assert.Equal(t, want.code, o.code, answer)
		assert.Equal(t, want.stdout, o.stdout, answer)
		assert.Regexp(t, "^"+want.stderr+"$", o.stderr, answer)
	}
}

func TestWaitForHTTPSWithoutTheHelper(t *testing.T) {
	t.Setenv("PORTFOR_HTTPS", "")
	t.Setenv("PATH", t.TempDir())
	o := portfor(t, newDB(t), "wait", "-t", "1", "https://localhost:1/", "localhost:1")
	assert.Equal(t, outcome{"", "portfor: https:// waits run portfor-https, which is not installed (neither beside portfor nor in PATH): " +
		"go install github.com/portfor/portfor/cmd/portfor-https@latest\n", 1}, o)
	o = portfor(t, newDB(t), "wait", "-t", "0.1", "https://localhost:1/", "free")
	assert.Equal(t, outcome{"", "", 0}, o, "free needs no TLS")
	// Found only through "." in PATH: not trusted, and said so.
	t.Setenv("PATH", ".")
	cmd := command(t, newDB(t), "wait", "-t", "1", "https://localhost:1/")
	require.NoError(t, os.WriteFile(filepath.Join(cmd.Dir, "portfor-https"), []byte("#!/bin/sh\necho ready\n"), 0o755))
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, "portfor: https:// waits run portfor-https, found only through '.' in PATH, which is not trusted: install it beside portfor, or set PORTFOR_HTTPS\n", string(out))

	t.Setenv("PORTFOR_HTTPS", "/nonexistent/portfor-https")
	o = portfor(t, newDB(t), "wait", "-t", "1", "https://localhost:1/")
	assert.Equal(t, outcome{"", "portfor: https:// waits run PORTFOR_HTTPS=/nonexistent/portfor-https: no such file or directory\n", 1}, o)
}

func TestWaitSeesAnHTTPServerStartLater(t *testing.T) {
	db := newDB(t)
	port := freePort(t)
	cmd := command(t, db, "wait", "-t", "30", fmt.Sprintf("http://localhost:%d/health", port))
	require.NoError(t, cmd.Start())
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	require.NoError(t, cmd.Wait())
}

func TestWaitForUnixSocket(t *testing.T) {
	db := newDB(t)
	path := filepath.Join(t.TempDir(), "app.sock")
	o := portfor(t, db, "wait", "-t", "0.05", "unix:"+path)
	assert.Equal(t, 1, o.code)
	assert.Regexp(t, `^portfor: unix:.*app\.sock not ready \(waited \d+ms\): last connect: no such file\.\n$`, o.stderr)
	assert.Equal(t, outcome{"free\n", "", 0}, portfor(t, db, "check", "unix:"+path))

	cmd := command(t, db, "wait", "-t", "30", "unix:"+path, "--", "echo", "up")
	out := new(strings.Builder)
	cmd.Stdout = out
	require.NoError(t, cmd.Start())
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, cmd.Wait())
	assert.Equal(t, "up\n", out.String())
	assert.Equal(t, outcome{"occupied\n", "", 1}, portfor(t, db, "check", "unix:"+path))
	o = portfor(t, db, "wait", "-t", "0.05", "unix:"+path, "free")
	assert.Contains(t, o.stderr, "not free")
}
