package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

func urlCommand() *cli.Command {
	return &cli.Command{
		Name:      "url",
		Usage:     "print http://localhost:PORT/PATH for a registered NAME (exit 1 if unknown)",
		ArgsUsage: "NAME[/PATH]",
		Description: `PATH, and a query after it, are kept as given. NAME is looked up, never
assigned; a registered name that contains '/' is taken whole.

   portfor url web                     # http://localhost:8001/
   portfor url web/health              # http://localhost:8001/health
   portfor url 'web/search?q=a&n=2'    # http://localhost:8001/search?q=a&n=2
   curl -fs "$(portfor url api/v1/status)"`,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor url", 1, "NAME"); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			arg := c.Args().First()
			a, rest, err := reg.LookupNamePath(c.Context, arg)
			if errors.Is(err, registry.ErrNotFound) {
				// NAME?QUERY, without a path.
				if name, query, ok := strings.Cut(arg, "?"); ok && !strings.Contains(name, "/") {
					if qa, qrest, qerr := reg.LookupNamePath(c.Context, name); qerr == nil && qrest == "" {
						a, rest, err = qa, "/?"+query, nil
					}
				}
			}
			if err != nil {
				var nf *registry.TargetNotFoundError
				if errors.As(err, &nf) {
					return fmt.Errorf("url: %q is not a registered name", nf.Target)
				}
				return fmt.Errorf("url: %w", err)
			}
			if rest == "" {
				rest = "/"
			}
			_, err = fmt.Fprintf(c.App.Writer, "http://%s:%d%s\n", registry.Localhost, a.Port, rest)
			return err
		},
	}
}
