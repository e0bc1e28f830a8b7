package main

import (
	"github.com/urfave/cli/v2"
)

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Aliases:   []string{"unbind"},
		Usage:     "free NAME's port (exit 1 if NAME is unknown)",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor release", 1, "NAME"); err != nil {
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
