package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func call(args ...string) (stdout, stderr string, code int) {
	var o, e strings.Builder
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

func TestWaitsOnHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	o, e, code := call("-t", "30s", "-insecure", srv.URL+"/")
	assert.Equal(t, []any{"", "", 0}, []any{o, e, code})
	o, e, code = call("-report", "-insecure", "-status", "2xx", srv.URL+"/")
	assert.Equal(t, []any{"ready\n", "", 0}, []any{o, e, code})

	o, e, code = call("-t", "300ms", srv.URL+"/")
	assert.Equal(t, 1, code)
	assert.Empty(t, o)
	assert.Regexp(t, `^portfor-https: https://127\.0\.0\.1:\d+/ not ready \(waited [\d.]+m?s\): last error: tls: failed to verify certificate: .*\n$`, e)

	deadline := strconv.FormatInt(time.Now().Add(300*time.Millisecond).UnixNano(), 10)
	o, e, code = call("-report", "-deadline", deadline, "-insecure", srv.URL+"/down")
	assert.Equal(t, []any{"last answer 503 Service Unavailable\n", "", 1}, []any{o, e, code})
}

func TestReportsFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o, _, code := call("-report", "-t", "100ms", "https://127.0.0.1:"+strconv.Itoa(port)+"/")
	assert.Equal(t, "last connection refused\n", o)
	assert.Equal(t, 1, code)
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"unix:/x"}, {"8080"}, {"-status", "99", "https://h/"}, {"-nope"}} {
		o, e, code := call(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Empty(t, o, "%q", args)
		assert.NotEmpty(t, e, "%q", args)
	}
	_, e, code := call("-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, e, "usage: portfor-https")
}

func TestOneLine(t *testing.T) {
	assert.Equal(t, "a; b; c", oneLine(" a\nb\r\n\tc "))
}
