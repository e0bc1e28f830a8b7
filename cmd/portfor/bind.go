package main

import (
	"github.com/urfave/cli/v2"
)

func bindCommand() *cli.Command {
	return &cli.Command{
		Name:      "bind",
		Usage:     "assign exactly PORT to NAME, or fail if either is taken",
		ArgsUsage: "NAME PORT",
		Description: `Records PORT for NAME without probing the host, so the port of a
service that is already running can be recorded. Fails (exit 1) when PORT
belongs to another name or NAME already holds another port; binding a NAME to
the port it holds succeeds.`,
		Action: func(c *cli.Context) error {
			const hint = "portfor bind"
			if err := checkArgs(c, hint, 2, "NAME", "PORT"); err != nil {
				return err
			}
			port, err := parsePort(hint, c.Args().Get(1))
			if err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			return reg.Bind(c.Context, c.Args().First(), port)
		},
	}
}
