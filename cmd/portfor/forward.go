package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/registry"
)

func forwardCommand() *cli.Command {
	return &cli.Command{
		Name:      "forward",
		Usage:     "print each NAME's port, assigning one (PORT if free) the first time",
		ArgsUsage: "NAME [PORT] | NAME[=PORT]...",
		Description: `The same as 'portfor NAME [PORT]', and the way to register a NAME that is a
command or looks like one (the shorthand refuses those). A known NAME always
gets its port back, whatever PORT says (a different PORT is noted on stderr:
'portfor move' changes it). A new NAME gets PORT when it is free on this host
and assigned to no other name, else the nearest suitable port above it; with
no PORT, a port derived from NAME.

Many names print one port per line, in the order given, and are assigned in
one transaction; exit 1 if any fails, naming it.

   PORT=$(portfor forward my-service 8000)
   portfor forward web=3000 api=4000 db`,
		Action: func(c *cli.Context) error { return forward(c, "portfor forward") },
	}
}

// forwardArgs reads NAME [PORT] or NAME[=PORT]... into requests. Two
// arguments of which the second starts with a digit are NAME PORT, so that
// a mistyped port (80o0) is refused rather than taken for a second name;
// the shorthand takes NAME [PORT] only. PORT after '=' is read only when it
// is all digits, so a name may contain '='.
func forwardArgs(hint string, args []string) ([]registry.ForwardRequest, error) {
	if len(args) > 2 && hint == "portfor" {
		return nil, usagef(hint, "unexpected argument %q after NAME PORT (many names: 'portfor forward NAME...')", args[2])
	}
	if len(args) == 2 && (hint == "portfor" || args[1][0] >= '0' && args[1][0] <= '9') {
		p, err := parsePort(hint, args[1])
		if err != nil {
			return nil, err
		}
		return []registry.ForwardRequest{{ID: args[0], Suggested: p}}, nil
	}
	reqs := make([]registry.ForwardRequest, len(args))
	asked := map[string]int{}
	for i, a := range args {
		reqs[i].ID = a
		if k := strings.LastIndexByte(a, '='); k > 0 {
			// NAME=PORT: a mistyped PORT is an error, not part of a name.
			p, err := parsePort(hint, a[k+1:])
			if err != nil {
				return nil, usagef(hint, "invalid port %q after %s=: want a number from 1 to %d", a[k+1:], clip(a[:k]), portrange.MaxPort)
			}
			reqs[i] = registry.ForwardRequest{ID: a[:k], Suggested: p}
		} else if isDigits(a) && len(args) > 1 {
			return nil, usagef(hint, "%s is a port without a name: write NAME=%s", a, a)
		}
		if err := registry.ValidateID(reqs[i].ID); err != nil {
			return nil, usagef(hint, "%v", err)
		}
		if p, seen := asked[reqs[i].ID]; seen && p != reqs[i].Suggested && p != 0 && reqs[i].Suggested != 0 {
			return nil, usagef(hint, "%s is asked for twice, with %d and %d", reqs[i].ID, p, reqs[i].Suggested)
		}
		if reqs[i].Suggested != 0 || asked[reqs[i].ID] == 0 {
			asked[reqs[i].ID] = reqs[i].Suggested
		}
	}
	return reqs, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// forward implements both `portfor NAME [PORT]` and `portfor forward ...`.
func forward(c *cli.Context, hint string) error {
	if c.NArg() == 0 {
		// Not help on stdout: in PORT=$(portfor $NAME) an empty $NAME
		// must not look like success.
		return usagef(hint, "missing NAME")
	}
	args := c.Args().Slice()
	reqs, err := forwardArgs(hint, args)
	if err != nil {
		return err
	}
	reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	if hint == "portfor" {
		// The shorthand: a new name that is, or nearly is, a command is
		// a typo until shown otherwise.
		for _, q := range reqs {
			cmd := nearCommand(c.App, q.ID)
			if cmd == "" && !isDigits(q.ID) {
				continue
			}
			if _, err := reg.Lookup(c.Context, q.ID); err == nil {
				continue // registered already, on purpose
			}
			if cmd == "" {
				return usagef(hint, "%s is a port, not a name: 'portfor NAME %s' gives it to NAME ('portfor forward %s' registers the name %s)", q.ID, q.ID, q.ID, q.ID)
			}
			return typoError(q.ID, cmd)
		}
	}
	res, err := forwardEach(c, reg, reqs)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range res {
		fmt.Fprintln(&b, r.Port)
	}
	_, err = fmt.Fprint(c.App.Writer, b.String())
	return err
}

// forwardEach assigns the ports reqs ask for in one transaction, as
// forward does (and env, which prints them as variables), and says on
// stderr when a known name keeps its port or a port asked for lies in the
// ephemeral range.
func forwardEach(c *cli.Context, reg *registry.Registry, reqs []registry.ForwardRequest) ([]registry.ForwardResult, error) {
	res, errs := reg.ForwardEach(c.Context, reqs)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	forwardNotes(c, reg, reqs, res)
	return res, nil
}

// warnEphemeral says on stderr that name's port lies in the ephemeral
// range, where an outgoing connection may hold it at any time.
func warnEphemeral(c *cli.Context, port int, name string) {
	fmt.Fprintf(c.App.ErrWriter, "portfor: warning: port %d is in the OS ephemeral range; an outgoing connection may hold it when %s starts\n", port, name)
}
