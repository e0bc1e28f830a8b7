package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/portserverclient"
	"github.com/portfor/portfor/registry"
)

func pickCommand() *cli.Command {
	return &cli.Command{
		Name:      "pick",
		Usage:     "lease a free port (TCP and UDP) for process PID, until it exits",
		ArgsUsage: "[PID]",
		Description: `Prints a port no other portfor user holds, free on TCP and UDP, IPv4 and IPv6,
outside the ephemeral range. It stays leased to PID (default: the parent process,
the shell that ran portfor) until 'portfor release --port PORT', or until PID has
exited, after which the next allocation or 'portfor gc' takes it back.

In a script, pass $$ so the port is held for the script's whole run:

   PORT=$(portfor pick $$)
   PORTS=$(portfor pick -n 3 $$)      # three distinct ports, one per line, ascending
   PORT=$(portfor pick --ports 8000-8100 $$)   # inside a range (exit 1 if it is full)

With PORTSERVER_ADDRESS set (as portpicker uses it), the port server there is
asked instead, one request per port (not with --ports: the protocol has no
range, so the registry is used). Its answer is used only if the server runs
as your user or root, and only if it is a port from 1024 up. pick waits up to
--timeout (-t) for each answer, seconds (5, 0.5) or a duration (5s, 500ms),
default 5s, then fails (exit 1): a server that accepts and never answers
does not hang it.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: 1, Usage: "how many ports (1-64), printed in ascending order"},
			&cli.StringFlag{Name: "ports", Usage: "lease inside these ports only, e.g. 8000-8100 or 8000-8100,9000"},
			&cli.StringFlag{Name: "timeout", Aliases: []string{"t"}, Value: defaultPickTimeout.String(),
				Usage: "with PORTSERVER_ADDRESS: wait up to `DURATION` for each of the server's answers: seconds (5, 0.5) or a duration (5s, 500ms)"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor pick"
			if err := checkArgs(c, hint, 0, "PID"); err != nil {
				return err
			}
			pid := os.Getppid()
			if c.NArg() == 1 {
				p, err := strconv.Atoi(c.Args().First())
				if err != nil || p < 1 {
					return usagef(hint, "invalid PID %q", c.Args().First())
				}
				pid = p
			}
			n := c.Int("n")
			if n < 1 || n > registry.MaxLeaseN {
				return usagef(hint, "-n %d: want 1 to %d", n, registry.MaxLeaseN)
			}
			var ports registry.PortList
			if c.IsSet("ports") {
				var err error
				if ports, err = registry.ParsePorts(c.String("ports")); err != nil {
					return usagef(hint, "--ports: %v", err)
				}
			}
			wait, err := parseDuration(c.String("timeout"))
			if err != nil {
				return usagef(hint, "--timeout: %v", err)
			}
			if wait == 0 {
				return usagef(hint, "--timeout %s: want more than 0", c.String("timeout"))
			}
			if addr := os.Getenv(portserverclient.EnvAddress); addr != "" && ports == nil {
				got := make([]int, n)
				for i := range got {
					if got[i], err = askServer(c.Context, addr, pid, wait); err != nil {
						return err
					}
				}
				return printSorted(c, got)
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			leases, err := reg.LeaseN(c.Context, n, registry.LeaseOptions{OwnerPID: pid, Ports: ports})
			if err != nil {
				return err
			}
			got := make([]int, len(leases))
			for i, a := range leases {
				got[i] = a.Port
			}
			return printSorted(c, got)
		},
	}
}

// defaultPickTimeout bounds the wait for each answer of a port server when
// --timeout is not given.
const defaultPickTimeout = 5 * time.Second

// askServer asks the port server at addr for a port for pid, waiting up to
// wait for its answer.
func askServer(ctx context.Context, addr string, pid int, wait time.Duration) (int, error) {
	ctx2, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	port, err := portserverclient.Ask(ctx2, addr, pid)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("port server %s: no answer within %s (-t/--timeout waits longer)", addr, wait)
	}
	return port, err
}

// printSorted prints ports in ascending order, one per line.
func printSorted(c *cli.Context, ports []int) error {
	slices.Sort(ports)
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintln(&b, p)
	}
	_, err := fmt.Fprint(c.App.Writer, b.String())
	return err
}

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "remove leases whose owner process has exited, and print them",
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor gc", 0); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			gone, err := reg.Reclaim(c.Context)
			if err != nil {
				return err
			}
			for _, a := range gone {
				fmt.Fprintf(c.App.Writer, "released port %d (lease of pid %d, gone: %s)\n", a.Port, a.OwnerPID, a.Command)
			}
			return nil
		},
	}
}
