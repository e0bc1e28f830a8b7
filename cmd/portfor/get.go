package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print NAME's port without assigning one (exit 1 if NAME is unknown)",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor get", 1, "NAME"); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			a, err := reg.Lookup(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, a.Port)
			return err
		},
	}
}
