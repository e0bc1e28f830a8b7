package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// errOccupied makes `portfor check` exit 1 without a message: the answer
// is already on stdout.
var errOccupied = &exitError{code: exitFailed}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "print free or occupied for TARGET (exit 0 if free, 1 if occupied)",
		ArgsUsage: "TARGET",
		Description: `Free means nothing accepts connections on TARGET and, for an address of this
host, a server could bind the port now. TARGET is as for 'portfor wait':
host:port, a bare port, a NAME, an http(s):// URL or NAME/PATH (its host and
port are checked: a server that accepts connections there is occupied, whatever
it answers), or unix:/PATH (free when nothing accepts a connection on it).
With --udp, free means a UDP socket could bind the port on this host. When a
port of this host is occupied, a line on stderr says who holds it (as
'portfor who' does), where the system lets portfor see.

   if portfor check 8080 >/dev/null; then ./server --port 8080; fi`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "udp", Usage: "check the UDP port instead (this host only)"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor check"
			if err := checkArgs(c, hint, 1, "TARGET"); err != nil {
				return err
			}
			targets, err := resolveTargets(c, c.Args().Slice(), hint)
			if err != nil {
				return err
			}
			t := targets[0]
			if c.Bool("udp") && t.Kind != registry.TargetTCP {
				return usagef(hint, "--udp needs a port or host:port, not %s", printable(t.String()))
			}
			var free bool
			if c.Bool("udp") {
				free, err = registry.CanBind(t.Addr.Port, registry.UDP)
			} else {
				free, err = registry.TargetAvailable(c.Context, t)
			}
			if err != nil {
				return err
			}
			if !free {
				fmt.Fprintln(c.App.Writer, "occupied")
				if t.Kind != registry.TargetUnix && onThisHost(t.Addr.Host) {
					proto := "tcp"
					if c.Bool("udp") {
						proto = "udp"
					}
					if reg, err := openRegistry(c); err == nil {
						noteHeldBy(c, reg, proto, t.Addr.Port, "%s", printable(t.Addr.String()))
					}
				}
				return errOccupied
			}
			_, err = fmt.Fprintln(c.App.Writer, "free")
			return err
		},
	}
}
