package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/dotenv"
	"github.com/portfor/portfor/registry"
)

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "print each NAME's port as a variable (WEB_PORT=3001), or merge them into a .env file",
		ArgsUsage: "[NAME[=PORT]...]",
		Description: `Prints one variable per NAME, assigning ports as 'portfor forward' does:
NAME upper-cased, every character but A-Z and 0-9 made '_' (a leading digit
gets a '_' before it), then _PORT. With no NAME, every name of the scope
(--scope; the global names without one), sorted. --compose adds, in a scope,
COMPOSE_PROJECT_NAME derived from it, so that each worktree's Compose project
has containers of its own.

--write FILE merges the variables into the .env file FILE instead: the
variables it would print get their ports (in their own quoting, keeping
'export', spacing and comments), missing ones are added at the end, and every
other byte stays. The file is replaced atomically and keeps its mode; it is
created (0644) if missing and not written at all when nothing changes.
A symbolic link to another user's file, or anything but a regular file, is
refused. Nothing is printed.

   portfor env web api=4000          # WEB_PORT=...  API_PORT=4000 (if free)
   eval "$(portfor env --format sh)" # export every registered port
   portfor env --prefix APP_ web     # APP_WEB_PORT=...
   portfor env --var db=PGPORT db    # PGPORT=...
   portfor env --format json web api # {"WEB_PORT": 3001, "API_PORT": 4000}
   portfor env --write .env web api  # update .env in place
   portfor --scope auto env --compose --write .env   # in a worktree: its names, and its own Compose project`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "dotenv", Usage: "dotenv, sh (export lines) or json (an object)"},
			&cli.StringFlag{Name: "prefix", Usage: "put `P` before every variable (not those --var names)"},
			&cli.GenericFlag{Name: "var", Value: &varFlag{}, Usage: "call NAME's variable `NAME=VAR` (repeatable)"},
			&cli.PathFlag{Name: "write", Usage: "merge into the dotenv `FILE` instead of printing"},
			&cli.BoolFlag{Name: "compose", Usage: "in a scope, add COMPOSE_PROJECT_NAME derived from it (parallel Compose projects share no containers)"},
		},
		Action: env,
	}
}

// varFlag collects --var NAME=VAR, each value whole (no splitting at
// commas: a name may hold one).
type varFlag struct{ list []string }

func (v *varFlag) Set(s string) error { v.list = append(v.list, s); return nil }
func (v *varFlag) String() string     { return strings.Join(v.list, " ") }

// envPort is a name, its port and its variable.
type envPort struct {
	name string
	port int
	vr   string
}

func env(c *cli.Context) error {
	const hint = "portfor env"
	format, write := c.String("format"), c.Path("write")
	switch format {
	case "dotenv", "sh", "json":
	default:
		return usagef(hint, "unknown --format %q: want dotenv, sh or json", format)
	}
	if write != "" && format != "dotenv" {
		return usagef(hint, "--write writes a dotenv file: --format %s does not go with it", format)
	}
	if c.IsSet("write") && write == "" {
		return usagef(hint, "--write needs a FILE")
	}
	prefix := c.String("prefix")
	if prefix != "" && !dotenv.IsIdentifier(prefix+"X") {
		return usagef(hint, "invalid --prefix %q: want letters, digits and _, not starting with a digit", prefix)
	}
	renames, err := varFlags(hint, c.Generic("var").(*varFlag).list)
	if err != nil {
		return err
	}
	variable := func(name string) string {
		if v, ok := renames[name]; ok {
			return v
		}
		return prefix + dotenv.Identifier(name) + "_PORT"
	}
	var reqs []registry.ForwardRequest
	if c.NArg() > 0 {
		if reqs, err = forwardArgs(hint, c.Args().Slice()); err != nil {
			return err
		}
		names := make([]string, len(reqs))
		for i, q := range reqs {
			names[i] = q.ID
		}
		// Before the registry is opened: usage errors write nothing.
		if err := checkVariables(hint, names, renames, variable); err != nil {
			return err
		}
	}
	reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	var ports []envPort
	if reqs != nil {
		res, err := forwardEach(c, reg, reqs)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for i, q := range reqs {
			if !seen[q.ID] {
				seen[q.ID] = true
				ports = append(ports, envPort{name: q.ID, port: res[i].Port})
			}
		}
	} else {
		if ports, err = envNames(c, reg); err != nil {
			return err
		}
		names := make([]string, len(ports))
		for i, p := range ports {
			names[i] = p.name
		}
		if err := checkVariables(hint, names, renames, variable); err != nil {
			return err
		}
	}
	vars := make([]dotenv.Var, len(ports))
	for i := range ports {
		ports[i].vr = variable(ports[i].name)
		vars[i] = dotenv.Var{Name: ports[i].vr, Value: strconv.Itoa(ports[i].port)}
	}
	project := ""
	if c.Bool("compose") && reg.Scope() != "" {
		project = composeProject(reg.Scope())
		vars = append(vars, dotenv.Var{Name: "COMPOSE_PROJECT_NAME", Value: project})
	}
	if write != "" {
		_, err := dotenv.Update(write, vars)
		return err
	}
	var b strings.Builder
	switch format {
	case "dotenv":
		for _, v := range vars {
			b.WriteString(v.Name + "=" + dotenv.Quote(v.Value) + "\n")
		}
	case "sh":
		for _, v := range vars {
			b.WriteString("export " + v.Name + "=" + dotenv.ShellQuote(v.Value) + "\n")
		}
	case "json":
		b.WriteString("{")
		for i, p := range ports {
			if i > 0 {
				b.WriteString(",")
			}
			k, _ := json.Marshal(p.vr)
			fmt.Fprintf(&b, "\n  %s: %d", k, p.port)
		}
		if project != "" {
			if len(ports) > 0 {
				b.WriteString(",")
			}
			v, _ := json.Marshal(project)
			fmt.Fprintf(&b, "\n  \"COMPOSE_PROJECT_NAME\": %s", v)
		}
		if len(ports) > 0 || project != "" {
			b.WriteString("\n")
		}
		b.WriteString("}\n")
	}
	_, err = fmt.Fprint(c.App.Writer, b.String())
	return err
}

// envNames is what `portfor env` without names prints: every stable name
// of the current scope (the global names outside one), sorted, with its
// port. It is the one place that chooses them.
func envNames(c *cli.Context, reg *registry.Registry) ([]envPort, error) {
	list, err := reg.List(c.Context) // sorted by name
	if err != nil {
		return nil, err
	}
	var out []envPort
	for _, a := range list {
		if a.Kind == registry.Stable && a.Scope == reg.Scope() {
			out = append(out, envPort{name: a.ID, port: a.Port})
		}
	}
	return out, nil
}

// composeProject makes a Compose project name of a scope: lower case
// letters, digits, '-' and '_', starting with a letter or digit, as
// Compose requires.
func composeProject(scope string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(scope) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.TrimLeft(b.String(), "-_")
	if name != scope {
		// Lossy (case, other characters): the scope's hash keeps two
		// scopes from sharing a project.
		h := fnv.New32a()
		h.Write([]byte(scope))
		name = strings.TrimSuffix(cmp.Or(name, "portfor"), "-") + fmt.Sprintf("-%08x", h.Sum32())
	}
	return name
}

// varFlags reads the --var NAME=VAR values into a map from name to variable.
func varFlags(hint string, list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range list {
		k := strings.LastIndexByte(s, '=')
		if k <= 0 {
			return nil, usagef(hint, "invalid --var %q: want NAME=VAR", s)
		}
		name, vr := s[:k], s[k+1:]
		if err := registry.ValidateID(name); err != nil {
			return nil, usagef(hint, "invalid --var %q: %v", s, err)
		}
		if !dotenv.IsIdentifier(vr) {
			return nil, usagef(hint, "invalid --var %q: %q is no variable name (letters, digits and _, not starting with a digit)", s, vr)
		}
		if old, ok := m[name]; ok && old != vr {
			return nil, usagef(hint, "--var gives %s two variables, %s and %s", name, old, vr)
		}
		m[name] = vr
	}
	return m, nil
}

// checkVariables refuses a --var for a name not among names, and two names
// whose variables are one.
func checkVariables(hint string, names []string, renames map[string]string, variable func(string) string) error {
	for _, name := range slices.Sorted(maps.Keys(renames)) {
		if !slices.Contains(names, name) {
			return usagef(hint, "--var %s=%s: %s is not among the names", name, renames[name], name)
		}
	}
	owner := map[string]string{}
	for _, name := range names {
		v := variable(name)
		if other, ok := owner[v]; ok && other != name {
			return usagef(hint, "%s and %s are both %s: --var NAME=VAR names one of them otherwise", other, name, v)
		}
		owner[v] = name
	}
	return nil
}
