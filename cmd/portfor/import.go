package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "bind the names another tool assigned (port-for's " + registry.DefaultPortForConfig + ")",
		ArgsUsage: "port-for [FILE]",
		Description: `Reads port-for's bindings (FILE, default ` + registry.DefaultPortForConfig + `) and binds
each name to its port as 'portfor bind' does, in one transaction, printing
one line per name, in the file's order:

   bound web 8001                      web is new and now holds 8001
   kept api 8002                       api held 8002 already
   conflict db 5432: port 5432 is web's
   conflict "my app" 8003: not a portfor name: contains whitespace

A conflict does not stop the others. Exit status: 0 when every name was
bound or kept, 1 when any conflicts or the file cannot be read, 2 for a
usage mistake. port-for lower-cases names ("Web = 8001" binds web).

   portfor import port-for --dry-run   # what it would do; changes nothing
   portfor import port-for ./port-for.conf`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report what would be bound, and change nothing"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor import"
			if err := checkArgs(c, hint, 1, "SOURCE", "FILE"); err != nil {
				return err
			}
			if src := c.Args().First(); src != "port-for" {
				return usagef(hint, "unknown source %q: portfor imports from port-for", src)
			}
			path := registry.DefaultPortForConfig
			if c.NArg() == 2 {
				path = c.Args().Get(1)
			}
			bindings, err := readPortForConfig(path)
			if err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			dry := c.Bool("dry-run")
			results, err := reg.Import(c.Context, bindings, dry)
			if err != nil {
				return err
			}
			var b strings.Builder
			conflicts := 0
			for _, r := range results {
				name := r.Name
				if registry.ValidateID(name) != nil {
					name = strconv.Quote(name)
				}
				fmt.Fprintf(&b, "%s %s %d", r.Status, name, r.Port)
				if r.Status == registry.ImportConflict {
					conflicts++
					fmt.Fprintf(&b, ": %s", conflictReason(r))
				}
				b.WriteByte('\n')
			}
			if _, err := fmt.Fprint(c.App.Writer, oneLinePerName(b.String())); err != nil {
				return err
			}
			note := ""
			if dry {
				note = " (dry run: nothing was written)"
			}
			if conflicts > 0 {
				return fmt.Errorf("import port-for %s: %d of %d names conflict%s", path, conflicts, len(results), note)
			}
			if dry {
				fmt.Fprintf(c.App.ErrWriter, "portfor: import port-for %s: dry run: nothing was written\n", oneLine(path))
			}
			return nil
		},
	}
}

// readPortForConfig opens and parses a port-for config file; the error
// names the file.
func readPortForConfig(path string) ([]registry.PortForBinding, error) {
	// A FIFO or a device would block the open or never end.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("import port-for %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import port-for: %w", err)
	}
	defer f.Close()
	bindings, err := registry.ParsePortForConfig(f)
	if err != nil {
		return nil, fmt.Errorf("import port-for %s: %w", path, err)
	}
	return bindings, nil
}

// conflictReason says in a few words why a binding was not made.
func conflictReason(r registry.ImportResult) string {
	var ide *registry.IDError
	var pe *registry.PortError
	switch {
	case errors.As(r.Err, &ide):
		return "not a portfor name: " + ide.Reason
	case errors.As(r.Err, &pe) && errors.Is(pe, registry.ErrInvalidPort):
		return "not a port (want 1-65535)"
	case errors.As(r.Err, &pe) && errors.Is(pe, registry.ErrIDBound):
		return fmt.Sprintf("%s already holds %d", r.Name, pe.Held)
	case errors.As(r.Err, &pe) && errors.Is(pe, registry.ErrPortTaken) && registry.IsLeaseID(pe.Owner):
		return fmt.Sprintf("port %d is leased", r.Port)
	case errors.As(r.Err, &pe) && errors.Is(pe, registry.ErrPortTaken) && pe.Owner != "":
		return fmt.Sprintf("port %d is %s's", r.Port, pe.Owner)
	}
	return r.Err.Error()
}

// oneLinePerName makes each line of s safe on a terminal (see oneLine):
// names come from a file someone else may have written.
func oneLinePerName(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if body, ok := strings.CutSuffix(l, "\n"); ok {
			lines[i] = oneLine(body) + "\n"
		}
	}
	return strings.Join(lines, "")
}
