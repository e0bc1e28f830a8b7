// Command portserverload drives a port server (portpicker's protocol) with
// concurrent clients and reports requests per second, latency and
// duplicate ports. Every request asks on behalf of this process's pid, so
// every port handed out stays taken for the whole run: a port seen twice
// is a duplicate. Only the given Unix socket is touched; the request count
// is bounded.
//
//	go run ./internal/bench/portserverload -address @unittest-portserver -c 16 -n 200
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("address", "@unittest-portserver", "the server's Unix socket (@name: abstract)")
	conc := flag.Int("c", 16, "concurrent clients")
	n := flag.Int("n", 200, "requests per client")
	flag.Parse()

	pid := os.Getpid()
	type result struct {
		port int
		lat  time.Duration
		err  error
	}
	results := make([][]result, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < *conc; c++ {
		wg.Go(func() {
			for i := 0; i < *n; i++ {
				t0 := time.Now()
				port, err := request(*addr, pid)
				results[c] = append(results[c], result{port, time.Since(t0), err})
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)

	seen := map[int]bool{}
	var lat []time.Duration
	failed, dups := 0, 0
	for _, rs := range results {
		for _, r := range rs {
			if r.err != nil {
				failed++
				continue
			}
			if seen[r.port] {
				dups++
			}
			seen[r.port] = true
			lat = append(lat, r.lat)
		}
	}
	slices.Sort(lat)
	total := *conc * *n
	fmt.Printf("%s: %d requests from %d clients in %v: %.0f req/s; ok %d, failed %d, duplicates %d",
		*addr, total, *conc, wall.Round(time.Millisecond), float64(total)/wall.Seconds(), len(lat), failed, dups)
	if len(lat) > 0 {
		fmt.Printf("; latency p50 %.2f ms, p99 %.2f ms", ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]))
	}
	fmt.Println()
	if dups > 0 || failed > 0 {
		os.Exit(1)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// request is one round trip of portpicker's protocol.
func request(addr string, pid int) (int, error) {
	c, err := net.DialTimeout("unix", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "%d\n", pid); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("no answer: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(line))
}
