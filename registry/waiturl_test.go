//go:build unix

package registry_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
	_ "github.com/portfor/portfor/registry/https"
)

func TestParseTarget(t *testing.T) {
	good := map[string]registry.Target{
		"8080":                      {Kind: registry.TargetTCP, Addr: localhost(8080)},
		"db:5432":                   {Kind: registry.TargetTCP, Addr: registry.HostPort{Host: "db", Port: 5432}},
		"http://localhost:8080":     {Kind: registry.TargetHTTP, Addr: localhost(8080), URL: "http://localhost:8080/"},
		"HTTP://LocalHost:8080/a?b": {Kind: registry.TargetHTTP, Addr: registry.HostPort{Host: "LocalHost", Port: 8080}, URL: "http://LocalHost:8080/a?b"},
		"http://127.0.0.1/x#frag":   {Kind: registry.TargetHTTP, Addr: registry.HostPort{Host: "127.0.0.1", Port: 80}, URL: "http://127.0.0.1/x"},
		"https://[::1]/health":      {Kind: registry.TargetHTTP, Addr: registry.HostPort{Host: "::1", Port: 443}, URL: "https://[::1]/health"},
		"unix:/run/app.sock":        {Kind: registry.TargetUnix, Path: "/run/app.sock"},
		"unix:///run/app.sock":      {Kind: registry.TargetUnix, Path: "/run/app.sock"},
		"unix:rel.sock":             {Kind: registry.TargetUnix, Path: "rel.sock"},
	}
	for in, want := range good {
		got, err := registry.ParseTarget(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		again, err := registry.ParseTarget(got.String())
		require.NoError(t, err, "%s → %s", in, got)
		assert.Equal(t, got, again, "String reads back: %s", in)
	}
	bad := map[string]string{
		"0":                      `invalid port "0": want a number from 1 to 65535`,
		"65536":                  `invalid port "65536": want a number from 1 to 65535`,
		"http://":                `no host after http://`,
		"http://localhost:0/":    `port "0" is not a number from 1 to 65535`,
		"http://localhost:99999": `port "99999" is not a number from 1 to 65535`,
		"http://::1/":            `an IPv6 address needs brackets`,
		"http://a b/":            `invalid character`,
		"unix:":                  `no socket path after unix:`,
		"host:http":              `port "http" is not a number from 1 to 65535`,
	}
	for in, want := range bad {
		_, err := registry.ParseTarget(in)
		require.Error(t, err, in)
		assert.ErrorIs(t, err, registry.ErrInvalidAddress, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestResolveTargetNamesAndPaths(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "web", 18080))
	require.NoError(t, reg.Bind(ctx, "api/v2", 18081))
	for in, want := range map[string]string{
		"web":                "localhost:18080",
		"web/health":         "http://localhost:18080/health",
		"web/a/b?c=d":        "http://localhost:18080/a/b?c=d",
		"web/":               "http://localhost:18080/",
		"api/v2":             "localhost:18081", // a registered name with '/' is taken whole
		"api/v2/x":           "http://localhost:18081/x",
		"http://web:1/":      "http://web:1/",
		"unix:/tmp/web.sock": "unix:/tmp/web.sock",
	} {
		got, err := reg.ResolveTarget(ctx, in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got.String(), in)
	}
	_, err := reg.ResolveTarget(ctx, "nope")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	assert.EqualError(t, err, `"nope" is neither a registered name nor a host:port`)
	_, err = reg.ResolveTarget(ctx, "nope/health")
	assert.EqualError(t, err, `"nope" is neither a registered name nor a host:port`)
	_, err = reg.ResolveTarget(ctx, "65536")
	assert.ErrorIs(t, err, registry.ErrInvalidPort)
	_, err = reg.Resolve(ctx, "0")
	assert.ErrorIs(t, err, registry.ErrInvalidPort, "Resolve says the same of a bad port")
}

func TestParseStatus(t *testing.T) {
	good := map[string]string{"200": "200", "200-299": "200-299", "2xx,304": "200-299,304", " 204 , 3XX ": "204,300-399", "100-599": "100-599"}
	for in, want := range good {
		s, err := registry.ParseStatus(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, s.String(), in)
	}
	for _, in := range []string{"", "99", "600", "2000", "20x", "299-200", "200-", "-200", "abc", "200,,201", "6xx", "+200"} {
		_, err := registry.ParseStatus(in)
		assert.ErrorIs(t, err, registry.ErrInvalidStatus, in)
	}
	var def registry.StatusSet
	assert.True(t, def.Contains(302))
	assert.False(t, def.Contains(400))
	s, _ := registry.ParseStatus("200-204,418")
	assert.True(t, s.Contains(418))
	assert.False(t, s.Contains(205))
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"200", "200-299", "2xx,304", "", "599-100", "1xx,2XX", " 200 ", "0200"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := registry.ParseStatus(s)
		if err != nil {
			return
		}
		again, err := registry.ParseStatus(set.String())
		if err != nil {
			t.Fatalf("%q → %q does not read back: %v", s, set, err)
		}
		for code := 90; code <= 610; code++ {
			if set.Contains(code) != again.Contains(code) {
				t.Fatalf("%q and %q differ on %d", s, set, code)
			}
			if set.Contains(code) && (code < 100 || code > 599) {
				t.Fatalf("%q holds %d", s, code)
			}
		}
	})
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"8080", "a:1", "[::1]:80", "http://localhost:8080/health", "https://[::1]/", "HTTP://x",
		"unix:/tmp/s", "unix://", "http://a:0", "http://[fe80::1%25eth0]:80/", "http://u:p@h:1/p?q#f", "65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := registry.ParseTarget(s)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidAddress) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidAddress", s, err)
			}
			return
		}
		if tg.Kind != registry.TargetUnix && (tg.Addr.Port < 1 || tg.Addr.Port > 65535 || tg.Addr.Host == "") {
			t.Fatalf("%q: bad address %+v", s, tg)
		}
		text := tg.String()
		if tg.Kind == registry.TargetHTTP {
			text = tg.URL // String hides a password
		}
		again, err := registry.ParseTarget(text)
		if err != nil || again != tg {
			t.Fatalf("%q → %q reads back as %+v, %v", s, text, again, err)
		}
	})
}

// serveLater returns a port nothing listens on yet and the function that
// starts serving h there (on 127.0.0.1, or ::1 when v6).
func serveLater(t *testing.T, v6 bool, h http.Handler) (int, func()) {
	t.Helper()
	port := freePort(t)
	return port, func() {
		host := "127.0.0.1"
		if v6 {
			host = "::1"
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		require.NoError(t, err)
		srv := &http.Server{Handler: h}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { srv.Close() })
	}
}

func waitAsync(t *testing.T, d time.Duration, target string, opts registry.WaitOptions) <-chan error {
	tg, err := registry.ParseTarget(target)
	require.NoError(t, err)
	done := make(chan error, 1)
	ctx := withTimeout(t, d)
	go func() { done <- registry.WaitTarget(ctx, tg, registry.StateOccupied, opts) }()
	return done
}

func TestWaitHTTPSeesAServerThatAppearsLater(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		if v6 && !hasIPv6() {
			continue
		}
		t.Run("v6="+strconv.FormatBool(v6), func(t *testing.T) {
			var hostHeader atomic.Value
			port, start := serveLater(t, v6, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hostHeader.Store(r.Host + " " + r.URL.Path)
			}))
			done := waitAsync(t, 30*time.Second, "http://localhost:"+strconv.Itoa(port)+"/health", registry.WaitOptions{})
			start()
			require.NoError(t, <-done)
			assert.Equal(t, "localhost:"+strconv.Itoa(port)+" /health", hostHeader.Load())
		})
	}
}

func TestWaitHTTPWaitsForAGoodAnswer(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	require.NoError(t, registry.WaitHTTP(withTimeout(t, 30*time.Second), srv.URL, registry.WaitOptions{}))
	assert.Equal(t, int32(4), n.Load(), "three 503s, then 200")
}

func TestWaitHTTPTimeoutSaysWhatItLastSaw(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := registry.WaitHTTP(withTimeout(t, 300*time.Millisecond), srv.URL+"/health", registry.WaitOptions{})
	var we *registry.TargetWaitError
	require.ErrorAs(t, err, &we)
	assert.ErrorIs(t, err, registry.ErrTimeout)
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+/health not ready \(waited [\d.]+m?s\): last answer 503 Service Unavailable\.$`, err.Error())

	url := "http://localhost:" + strconv.Itoa(freePort(t)) + "/"
	err = registry.WaitHTTP(withTimeout(t, 300*time.Millisecond), url, registry.WaitOptions{})
	assert.ErrorIs(t, err, registry.ErrTimeout)
	assert.Contains(t, err.Error(), "last connection refused")
}

func TestWaitHTTPStatusAndRedirects(t *testing.T) {
	requests := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case requests <- r.URL.Path:
		default:
		}
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/elsewhere":
			t.Error("a redirect was followed")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	require.NoError(t, registry.WaitHTTP(withTimeout(t, 10*time.Second), srv.URL+"/moved", registry.WaitOptions{}), "a 3xx is below 400")
	only200, err := registry.ParseStatus("200")
	require.NoError(t, err)
	// lastSeen waits on url until the server has had a second request (so
	// the first answer was read), cancels, and returns what the wait says.
	lastSeen := func(path string) error {
		for len(requests) > 0 {
			<-requests
		}
		ctx, cancel := context.WithCancel(withTimeout(t, 30*time.Second))
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- registry.WaitHTTP(ctx, srv.URL+path, registry.WaitOptions{Status: only200}) }()
		for n := 0; n < 2; n++ {
			select {
			case got := <-requests:
				require.Equal(t, path, got)
			case err := <-done:
				return err
			}
		}
		cancel()
		return <-done
	}
	err = lastSeen("/moved")
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "last answer 302 Found")
	assert.ErrorContains(t, lastSeen("/nocontent"), "last answer 204 No Content")
	twos, _ := registry.ParseStatus("2xx")
	require.NoError(t, registry.WaitHTTP(withTimeout(t, 10*time.Second), srv.URL+"/nocontent", registry.WaitOptions{Status: twos}))
}

func TestWaitHTTPIgnoresProxySettings(t *testing.T) {
	var proxied atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Store(true)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	require.NoError(t, registry.WaitHTTP(withTimeout(t, 10*time.Second), srv.URL, registry.WaitOptions{}))
	assert.False(t, proxied.Load(), "the proxy was asked")
}

func TestWaitHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes
	srv.StartTLS()
	defer srv.Close()
	// Long enough for a TLS handshake under the race detector on a loaded
	// machine (one second was not always).
	err := registry.WaitHTTP(withTimeout(t, 3*time.Second), srv.URL, registry.WaitOptions{})
	assert.ErrorIs(t, err, registry.ErrTimeout, "a certificate nobody trusts is not ready")
	assert.ErrorContains(t, err, "certificate")
	require.NoError(t, registry.WaitHTTP(withTimeout(t, 10*time.Second), srv.URL, registry.WaitOptions{Insecure: true}))
}

func TestWaitHTTPFreeMeansNothingAccepts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	tg, err := registry.ParseTarget(srv.URL)
	require.NoError(t, err)
	err = registry.WaitTarget(withTimeout(t, 20*time.Millisecond), tg, registry.StateFree, registry.WaitOptions{})
	assert.ErrorIs(t, err, registry.ErrTimeout, "a 503 is not free")
	ok, err := registry.TargetAvailable(ctx, tg)
	require.NoError(t, err)
	assert.False(t, ok)
	srv.Close()
	require.NoError(t, registry.WaitTarget(withTimeout(t, 10*time.Second), tg, registry.StateFree, registry.WaitOptions{}))
}

func TestWaitUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	tg, err := registry.ParseTarget("unix:" + path)
	require.NoError(t, err)
	err = registry.WaitUnix(withTimeout(t, 300*time.Millisecond), path)
	assert.ErrorIs(t, err, registry.ErrTimeout)
	assert.Contains(t, err.Error(), "not ready")
	assert.Contains(t, err.Error(), "last connect: no such file")
	require.NoError(t, registry.WaitUnixFree(withTimeout(t, 10*time.Second), path), "no file is free")

	done := make(chan error, 1)
	wctx := withTimeout(t, 30*time.Second)
	go func() { done <- registry.WaitTarget(wctx, tg, registry.StateOccupied, registry.WaitOptions{}) }()
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	require.NoError(t, <-done)
	ok, err := registry.TargetAvailable(ctx, tg)
	require.NoError(t, err)
	assert.False(t, ok)
	err = registry.WaitUnixFree(withTimeout(t, 20*time.Millisecond), path)
	assert.ErrorContains(t, err, "not free")

	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the file stays, refusing connections
	require.NoError(t, registry.WaitTarget(withTimeout(t, 10*time.Second), tg, registry.StateFree, registry.WaitOptions{}))
	err = registry.WaitUnix(withTimeout(t, 300*time.Millisecond), path)
	assert.ErrorContains(t, err, "last connect: connection refused")
}

func TestParseTargetEscapesTheQueryAndHidesThePassword(t *testing.T) {
	tg, err := registry.ParseTarget("http://127.0.0.1:8080/h?q=a b&r=é&s=%20")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8080/h?q=a%20b&r=%C3%A9&s=%20", tg.URL)

	tg, err = registry.ParseTarget("http://admin:s3cret@127.0.0.1:8080/")
	require.NoError(t, err)
	assert.Equal(t, "http://admin:xxxxx@127.0.0.1:8080/", tg.String())
	assert.Contains(t, tg.URL, "s3cret", "the request still has it")

	_, err = registry.ParseTarget("unix://host/run/app.sock")
	assert.ErrorIs(t, err, registry.ErrInvalidAddress)
	assert.ErrorContains(t, err, "a unix: target has no host")
}

func TestWaitUnixSaysAPathIsTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("s", 120)+".sock")
	err := registry.WaitUnix(withTimeout(t, 10*time.Second), path)
	assert.ErrorContains(t, err, "more than a Unix socket address holds")
	assert.NotErrorIs(t, err, registry.ErrTimeout, "at once, not at the deadline")
}

func TestLookupNamePath(t *testing.T) {
	reg := mustOpen(t)
	require.NoError(t, reg.Bind(ctx, "web", 18080))
	require.NoError(t, reg.Bind(ctx, "api/v2", 18081))
	for in, want := range map[string]struct {
		port int
		rest string
	}{
		"web":           {18080, ""},
		"web/":          {18080, "/"},
		"web/a b?c=d#e": {18080, "/a b?c=d#e"}, // kept as given
		"api/v2":        {18081, ""},
		"api/v2/x":      {18081, "/x"},
	} {
		a, rest, err := reg.LookupNamePath(ctx, in)
		require.NoError(t, err, in)
		assert.Equal(t, want.port, a.Port, in)
		assert.Equal(t, want.rest, rest, in)
	}
	_, _, err := reg.LookupNamePath(ctx, "nope/x")
	var nf *registry.TargetNotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "nope", nf.Target)
	assert.ErrorIs(t, err, registry.ErrNotFound)
	_, _, err = reg.LookupNamePath(ctx, "a b/x")
	assert.ErrorIs(t, err, registry.ErrInvalidID)
}
