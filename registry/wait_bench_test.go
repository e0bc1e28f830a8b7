//go:build linux

package registry_test

import (
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portfor/portfor/registry"
)

func benchFreePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkWaitOccupiedDetection measures how long WaitOccupied takes to
// return after a listener appears on localhost (reported as p50-ms and
// p90-ms). Each iteration lets the wait run 20-60 ms first, so the listener
// appears at a random point of its polling cycle.
func BenchmarkWaitOccupiedDetection(b *testing.B) {
	var lat []time.Duration
	for b.Loop() {
		port := benchFreePort(b)
		done := make(chan time.Time, 1)
		errc := make(chan error, 1)
		go func() {
			err := registry.WaitOccupied(context.Background(), registry.HostPort{Host: "localhost", Port: port})
			done <- time.Now()
			errc <- err
		}()
		time.Sleep(time.Duration(20+rand.IntN(40)) * time.Millisecond) // pacing: a random phase, not synchronisation
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		lat = append(lat, (<-done).Sub(t0))
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
	reportDetection(b, lat)
}

// reportDetection reports the median and 90th percentile of detection
// latencies, in milliseconds.
func reportDetection(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10])/1e6, "p90-ms")
}

// BenchmarkWaitIdleCPU waits 1 s on a closed port and reports the process
// CPU time used per second of waiting, in percent of one core ("cpu-%").
func BenchmarkWaitIdleCPU(b *testing.B) {
	port := benchFreePort(b)
	var cpu, wall time.Duration
	for b.Loop() {
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := registry.WaitOccupied(ctx, registry.HostPort{Host: "localhost", Port: port})
		cancel()
		if err == nil {
			b.Fatal("nothing listens, yet the wait succeeded")
		}
		wall += time.Since(start)
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu += time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
}

// BenchmarkAvailable measures one strict free check on localhost: two
// refused connects plus the four-address bind probe.
func BenchmarkAvailable(b *testing.B) {
	addr := registry.HostPort{Host: "localhost", Port: benchFreePort(b)}
	for b.Loop() {
		ok, err := registry.Available(context.Background(), addr)
		if err != nil || !ok {
			b.Fatalf("Available(%v) = %v, %v", addr, ok, err)
		}
	}
}

// BenchmarkAssertFreeBusy measures AssertFree on a port something listens on.
func BenchmarkAssertFreeBusy(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
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
	addr := registry.HostPort{Host: "localhost", Port: l.Addr().(*net.TCPAddr).Port}
	for b.Loop() {
		if err := registry.AssertFree(context.Background(), addr); err == nil {
			b.Fatal("a listened port reported free")
		}
	}
}
