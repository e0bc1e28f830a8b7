package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/registry"
)

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Aliases:   []string{"unbind"},
		Usage:     "free each NAME's port, or with --port whatever holds PORT (exit 1 if any is unknown)",
		ArgsUsage: "NAME... | --port PORT",
		Description: `Many names are released in one transaction. Every known NAME is released even
when others are unknown, as rm removes the files that exist; the unknown ones
are named on stderr with exit 1. With --scope on the command line and no NAME,
every name of that scope is released in one transaction, and printed as SCOPE
NAME PORT ($PORTFOR_SCOPE alone does not do that: a bare 'portfor release' is
a mistake).

   portfor release web api db
   portfor release --scope feature-x`,
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
				if root := rootContext(c); root.String("scope") != "" && scopeOnCommandLine(c) {
					return releaseScope(c, root.String("scope"))
				}
				return usagef(hint, "missing NAME (or --scope SCOPE, to free a whole scope)")
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

// releaseScope frees every name of scope and prints them.
func releaseScope(c *cli.Context, scope string) error {
	scope, _, err := resolveScope(scope)
	if err != nil {
		return err
	}
	if scope == "" {
		return usagef("portfor release", "--scope auto: this directory is in no worktree scope (the main worktree's names are global)")
	}
	reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	freed, err := reg.ReleaseScope(c.Context, scope)
	if err != nil {
		return err
	}
	return printFreed(c, freed)
}

// printFreed prints freed names as SCOPE NAME PORT, one per line.
func printFreed(c *cli.Context, freed []registry.Assignment) error {
	var b strings.Builder
	for _, a := range freed {
		fmt.Fprintf(&b, "%s %s %d\n", printable(a.Scope), printable(a.ID), a.Port)
	}
	_, err := io.WriteString(c.App.Writer, b.String())
	return err
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "free the names of scopes whose directory is gone (a removed git worktree)",
		Description: `A scope's directory is where its names were asked for. Once none of those
directories exists (after 'git worktree remove'), its names only hold ports:
prune frees them, in one transaction, and prints them as SCOPE NAME PORT.
'portfor doctor' notes such scopes.

   git worktree remove ../app-feature-x && portfor prune`,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor prune", 0); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			freed, err := reg.Prune(c.Context)
			if err != nil {
				return err
			}
			return printFreed(c, freed)
		},
	}
}
