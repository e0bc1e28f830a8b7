package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

func findCommand() *cli.Command {
	return &cli.Command{
		Name:      "find",
		Usage:     "print the first free port of RANGE (exit 1 if none; --any: any free port then)",
		ArgsUsage: "RANGE",
		Description: `RANGE is a list of ports and ranges, searched in order: 8000-8100 or 8000,8005,9000-9010.
A port is free when no name in the registry holds it and a server could bind it
now. Ports below 1024 are skipped. Nothing is recorded: use 'portfor NAME PORT' to
keep a port.

   PORT=$(portfor find 8000-8100)`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "any", Usage: "when RANGE has no free port, print any free port instead of failing"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor find"
			if err := checkArgs(c, hint, 1, "RANGE"); err != nil {
				return err
			}
			ports, err := registry.ParsePorts(c.Args().First())
			if err != nil {
				return usagef(hint, "%v", err)
			}
			var low []string
			for _, r := range ports {
				if r.First < registry.MinPort {
					low = append(low, r.String())
				}
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			port, err := reg.FindFree(c.Context, ports, registry.FindOptions{AnyPort: c.Bool("any")})
			if err != nil {
				if len(low) > 0 { // one line on failure: the skipped ports go into it
					return fmt.Errorf("%w (ports below %d skipped in %s)", err, registry.MinPort, strings.Join(low, ","))
				}
				return err
			}
			for _, r := range low {
				fmt.Fprintf(c.App.ErrWriter, "portfor: warning: skipping ports below %d in %s\n", registry.MinPort, r)
			}
			_, err = fmt.Fprintln(c.App.Writer, port)
			return err
		},
	}
}
