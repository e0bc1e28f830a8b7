// Command waitlatency measures, side by side, how fast `portfor wait` and
// portend (python3 -m portend) notice a server that starts listening, and
// how much CPU each burns while waiting on a closed port.
//
// For each run it starts the waiter on a free loopback port, lets it settle
// for a random 100-300 ms (so the listener appears at a random point of the
// waiter's polling cycle), starts listening, and times listen() to the
// waiter's exit. Only loopback is touched, and every loop is bounded.
//
//	go run ./internal/bench/waitlatency -portfor /path/to/portfor -n 40
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

func main() {
	portfor := flag.String("portfor", "portfor", "the portfor binary")
	python := flag.String("python", "/usr/bin/python3", "the Python with portend installed")
	n := flag.Int("n", 40, "runs per tool")
	idle := flag.Duration("idle", 10*time.Second, "how long to wait on a closed port for the CPU figure (0: skip)")
	flag.Parse()

	tools := []struct {
		name string
		cmd  func(port int, timeout string) *exec.Cmd
	}{
		{"portfor", func(port int, timeout string) *exec.Cmd {
			return exec.Command(*portfor, "--db", os.TempDir()+"/waitlatency.db", "wait", "-t", timeout, "localhost:"+strconv.Itoa(port))
		}},
		{"portend", func(port int, timeout string) *exec.Cmd {
			return exec.Command(*python, "-m", "portend", "localhost:"+strconv.Itoa(port), "occupied", "-t", timeout)
		}},
	}
	medians := map[string]time.Duration{}
	for _, tool := range tools {
		lat := make([]time.Duration, 0, *n)
		for i := 0; i < *n; i++ {
			d, err := detect(tool.cmd)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", tool.name, err)
				os.Exit(1)
			}
			lat = append(lat, d)
		}
		slices.Sort(lat)
		medians[tool.name] = lat[len(lat)/2]
		fmt.Printf("%-8s detection latency over %d runs: median %6.2f ms  p90 %6.2f ms  min %6.2f ms  max %6.2f ms\n",
			tool.name, len(lat), ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(lat[0]), ms(lat[len(lat)-1]))
	}
	fmt.Printf("portend / portfor median ratio: %.1fx\n", float64(medians["portend"])/float64(medians["portfor"]))

	if *idle > 0 {
		for _, tool := range tools {
			port := freePort()
			cmd := tool.cmd(port, strconv.FormatFloat(idle.Seconds(), 'f', -1, 64))
			start := time.Now()
			_ = cmd.Run() // times out: exit 1 is expected
			wall := time.Since(start)
			cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			fmt.Printf("%-8s waiting %v on a closed port: %v CPU over %v wall = %.2f%% of one core\n",
				tool.name, *idle, cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds())
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func freePort() int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// detect starts a waiter, then a listener, and returns listen-to-exit time.
func detect(mk func(port int, timeout string) *exec.Cmd) (time.Duration, error) {
	port := freePort()
	cmd := mk(port, "30")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond) // let it start and settle into polling
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	defer l.Close()
	go func() { // accept and drop the waiter's probe connections
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t0 := time.Now()
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("waiter failed: %w", err)
	}
	return time.Since(t0), nil
}
