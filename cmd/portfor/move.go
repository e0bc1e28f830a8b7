package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

func moveCommand() *cli.Command {
	return &cli.Command{
		Name:      "move",
		Usage:     "give NAME the port PORT instead of the one it holds",
		ArgsUsage: "NAME PORT",
		Description: `Changes a registered NAME's port in one transaction, with the checks of
'portfor bind': PORT must be held by no other name or lease. Like bind, it
does not probe the host, so the port of a service already running there can
be recorded. Moving NAME to the port it holds changes nothing; an unknown
NAME is an error (exit 1: 'portfor bind' records a new one).

   portfor my-service 4000      # prints 3000: my-service keeps its port
   portfor move my-service 4000 # from now on, 4000`,
		Action: namePortAction("portfor move", func(reg *registry.Registry, ctx context.Context, name string, port int) error {
			_, err := reg.Move(ctx, name, port)
			return err
		}),
	}
}
