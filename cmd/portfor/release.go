package main

import (
	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/portrange"
)

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Aliases:   []string{"unbind"},
		Usage:     "free NAME's port, or with --port whatever holds PORT (exit 1 if none)",
		ArgsUsage: "NAME | --port PORT",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Usage: "release the name or lease holding this port"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor release"
			if c.IsSet("port") {
				if err := checkArgs(c, hint, 0); err != nil {
					return err
				}
				port := c.Int("port")
				if port < 1 || port > portrange.MaxPort {
					return usagef(hint, "invalid port %d: want a number from 1 to %d", port, portrange.MaxPort)
				}
				reg, err := openRegistry(c)
				if err != nil {
					return err
				}
				_, err = reg.ReleasePort(c.Context, port)
				return err
			}
			if err := checkArgs(c, hint, 1, "NAME"); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			_, err = reg.Release(c.Context, c.Args().First())
			return err
		},
	}
}
