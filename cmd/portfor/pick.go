package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

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
as your user or root, and only if it is a port from 1024 up.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: 1, Usage: "how many ports (1-64), printed in ascending order"},
			&cli.StringFlag{Name: "ports", Usage: "lease inside these ports only, e.g. 8000-8100 or 8000-8100,9000"},
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
			if addr := os.Getenv(portserverclient.EnvAddress); addr != "" && ports == nil {
				got := make([]int, n)
				for i := range got {
					port, err := portserverclient.Ask(c.Context, addr, pid)
					if err != nil {
						return err
					}
					got[i] = port
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
