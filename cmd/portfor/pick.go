package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
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
   PORTS=$(portfor pick -n 3 $$)      # three distinct ports, one per line

With PORTSERVER_ADDRESS set (as portpicker uses it), the port server there is
asked instead, one request per port. Its answer is used only if the server runs
as your user or root, and only if it is a port from 1024 up.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: 1, Usage: "how many ports (1-64)"},
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
			if addr := os.Getenv("PORTSERVER_ADDRESS"); addr != "" {
				for i := 0; i < n; i++ {
					port, err := portserver.Ask(c.Context, addr, pid)
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, port)
				}
				return nil
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			leases, err := reg.LeaseN(c.Context, n, registry.LeaseOptions{OwnerPID: pid})
			if err != nil {
				return err
			}
			for _, a := range leases {
				fmt.Fprintln(c.App.Writer, a.Port)
			}
			return nil
		},
	}
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
