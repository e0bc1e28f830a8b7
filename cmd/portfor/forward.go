package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func forwardCommand() *cli.Command {
	return &cli.Command{
		Name:      "forward",
		Usage:     "print NAME's port, assigning one (PORT if free) the first time",
		ArgsUsage: "NAME [PORT]",
		Description: `The same as 'portfor NAME [PORT]', for a NAME that is also a command.
A known NAME always gets its port back, whatever PORT says. A new NAME gets
PORT when it is free on this host and assigned to no other name, else the
nearest suitable port above it; with no PORT, a port derived from NAME.

   PORT=$(portfor forward my-service 8000)`,
		Action: func(c *cli.Context) error { return forward(c, "portfor forward") },
	}
}

// forward implements both `portfor NAME [PORT]` and `portfor forward NAME [PORT]`.
func forward(c *cli.Context, hint string) error {
	if err := checkArgs(c, hint, 1, "NAME", "PORT"); err != nil {
		return err
	}
	suggested := 0
	if c.NArg() == 2 {
		p, err := parsePort(hint, c.Args().Get(1))
		if err != nil {
			return err
		}
		suggested = p
	}
	reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	port, err := reg.ForwardPort(c.Context, c.Args().First(), suggested)
	if err != nil {
		return err
	}
	// Only a port asked for by number can lie in the ephemeral range.
	if suggested != 0 && port == suggested && reg.IsEphemeral(port) {
		fmt.Fprintf(c.App.ErrWriter, "portfor: warning: port %d is in the OS ephemeral range; an outgoing connection may hold it when %s starts\n", port, c.Args().First())
	}
	_, err = fmt.Fprintln(c.App.Writer, port)
	return err
}
