//go:build linux

package registry_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portfor/portfor/registry"
)

// BenchmarkWaitHTTPDetection measures how long WaitHTTP takes to return
// after an HTTP server starts on localhost (listen, then serve), reported
// as p50-ms and p90-ms. As in BenchmarkWaitOccupiedDetection, each
// iteration lets the wait poll 20-60 ms first, so the server appears at a
// random point of the polling cycle.
func BenchmarkWaitHTTPDetection(b *testing.B) {
	var lat []time.Duration
	for b.Loop() {
		port := benchFreePort(b)
		done := make(chan time.Time, 1)
		errc := make(chan error, 1)
		go func() {
			err := registry.WaitHTTP(context.Background(), "http://localhost:"+strconv.Itoa(port)+"/health", registry.WaitOptions{})
			done <- time.Now()
			errc <- err
		}()
		time.Sleep(time.Duration(20+rand.IntN(40)) * time.Millisecond) // pacing: a random phase, not synchronisation
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
		go func() { _ = srv.Serve(l) }()
		lat = append(lat, (<-done).Sub(t0))
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		srv.Close()
	}
	reportDetection(b, lat)
}

// BenchmarkWaitHTTPReady measures the ready check alone: WaitHTTP on a
// server that already answers 200 (one probe connect and one GET on a fresh
// connection, client and server in this process).
func BenchmarkWaitHTTPReady(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	url := "http://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/"
	for b.Loop() {
		if err := registry.WaitHTTP(context.Background(), url, registry.WaitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitUnixReady measures WaitUnix on a socket that accepts.
func BenchmarkWaitUnixReady(b *testing.B) {
	path := b.TempDir() + "/b.sock"
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for b.Loop() {
		if err := registry.WaitUnix(context.Background(), path); err != nil {
			b.Fatal(err)
		}
	}
}
