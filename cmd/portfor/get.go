package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print each NAME's port without assigning one (exit 1 if any is unknown)",
		ArgsUsage: "NAME...",
		Description: `Many names print one port per line, in the order given, read in one
transaction. When any NAME is unknown nothing is printed, so that a script
reading one line per name never reads a wrong one.

   read -r WEB API < <(portfor get web api | paste -sd ' ')`,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("portfor get", "missing NAME")
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			as, errs := reg.LookupEach(c.Context, c.Args().Slice())
			if err := errors.Join(errs...); err != nil {
				return err
			}
			var b strings.Builder
			for _, a := range as {
				fmt.Fprintln(&b, a.Port)
			}
			_, err = fmt.Fprint(c.App.Writer, b.String())
			return err
		},
	}
}
