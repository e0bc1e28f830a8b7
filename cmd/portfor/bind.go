package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

func bindCommand() *cli.Command {
	return &cli.Command{
		Name:      "bind",
		Usage:     "assign exactly PORT to NAME, or fail if either is taken",
		ArgsUsage: "NAME PORT",
		Description: `Records PORT for NAME without probing the host, so the port of a
service that is already running can be recorded. Fails (exit 1) when PORT
belongs to another name or NAME already holds another port (saying what holds
the port now, where the system lets portfor see); binding a NAME to the port it
holds succeeds.`,
		Action: namePortAction("portfor bind", (*registry.Registry).Bind),
	}
}

// namePortAction is the action of a command that takes NAME PORT: it
// checks both (usage errors point to hint's help), opens the registry,
// calls do, and warns, as forward does, of a port in the ephemeral range.
func namePortAction(hint string, do func(reg *registry.Registry, ctx context.Context, name string, port int) error) cli.ActionFunc {
	return func(c *cli.Context) error {
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
		name := c.Args().First()
		if err := do(reg, c.Context, name, port); err != nil {
			if errors.Is(err, registry.ErrPortTaken) {
				if who := heldBy(c.Context, reg, "tcp", port); who != "" {
					return fmt.Errorf("%w; occupied now by %s", err, who)
				}
			}
			return err
		}
		if reg.IsEphemeral(port) {
			warnEphemeral(c, port, name)
		}
		return nil
	}
}
