//go:build linux

package portserver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/internal/portserverclient"
	"github.com/portfor/portfor/registry"
)

func benchServer(b *testing.B) (addr string, pool registry.PortList) {
	b.Helper()
	dir := b.TempDir()
	reg, err := registry.Open(filepath.Join(dir, "registry.db"), registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	pool, _ = registry.ParsePorts("1024-65535") // room for b.N leases: they all stay taken
	addr = fmt.Sprintf("@portfor-bench-%d-%s", os.Getpid(), filepath.Base(dir))
	l, closeFn, err := portserver.Listen(addr, 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&portserver.Server{Registry: reg, Pool: pool}).Serve(ctx, l) }()
	b.Cleanup(func() { cancel(); <-done; closeFn() })
	return addr, pool
}

// BenchmarkServerRoundTrip measures one client's request after request:
// connect, send the pid, read the port (a lease committed to the registry).
// Every port stays leased (one owner: this process), so b.N is capped.
func BenchmarkServerRoundTrip(b *testing.B) {
	addr, pool := benchServer(b)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		if n++; n > 30000 {
			b.Skip("ports used up: run with -benchtime 30000x or less")
		}
		p, err := portserverclient.Ask(ctx, addr, os.Getpid())
		if err != nil || !pool.Contains(p) {
			b.Fatalf("Ask = %d, %v", p, err)
		}
	}
}

// BenchmarkServerRoundTrip16 is the same with 16 clients at once; ns/op is
// per request.
func BenchmarkServerRoundTrip16(b *testing.B) {
	addr, pool := benchServer(b)
	ctx := context.Background()
	if b.N > 30000 {
		b.Skip("ports used up: run with -benchtime 30000x or less")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	work := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	for c := 0; c < 16; c++ {
		wg.Go(func() {
			for range work {
				p, err := portserverclient.Ask(ctx, addr, os.Getpid())
				mu.Lock()
				dup := seen[p]
				seen[p] = true
				mu.Unlock()
				if err != nil || !pool.Contains(p) || dup {
					b.Errorf("Ask = %d, %v (duplicate %v)", p, err, dup)
					return
				}
			}
		})
	}
	wg.Wait()
}
