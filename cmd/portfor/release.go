package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/portrange"
)

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Aliases:   []string{"unbind"},
		Usage:     "free each NAME's port, or with --port whatever holds PORT (exit 1 if any is unknown)",
		ArgsUsage: "NAME... | --port PORT",
		Description: `Many names are released in one transaction. Every known NAME is released even
when others are unknown, as rm removes the files that exist; the unknown ones
are named on stderr with exit 1.

   portfor release web api db`,
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
			if c.NArg() == 0 {
				return usagef(hint, "missing NAME")
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			_, errs := reg.ReleaseEach(c.Context, c.Args().Slice())
			return errors.Join(errs...)
		},
	}
}
