package main

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/registry"
)

// listEntry is the JSON form of an assignment.
type listEntry struct {
	Name    string    `json:"name"`
	Scope   string    `json:"scope"` // "" for a global name or a lease
	Port    int       `json:"port"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Dir     string    `json:"dir,omitempty"`
	// Leases only.
	OwnerPID   int    `json:"owner_pid,omitempty"`
	OwnerAlive *bool  `json:"owner_alive,omitempty"`
	Command    string `json:"command,omitempty"`
	// Up says whether something listens on (TCP) or is bound to (UDP)
	// the port now; null where the system cannot tell. Listeners are the
	// sockets, as 'portfor who --json' prints them.
	Up        *bool      `json:"up"`
	Listeners []whoEntry `json:"listeners"`
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "print every assignment, sorted by scope and name (--leases: leases and their owners)",
		Description: `With --scope (or $PORTFOR_SCOPE), only the names of that scope; --scope auto
is this git worktree's (none in the main worktree: its names are the global ones).

The UP column says what listens on (TCP) or is bound to (UDP) each port now:
PID/PROGRAM ("+N" when more processes share it), "uid N" for another user's
process portfor may not see, "-" for nothing, "?" where the system cannot tell.
A process running in the directory of other names than the port's own (a
server started in another worktree, say) is flagged "!", with a line on
stderr saying whose directory it is.

Examples:
   portfor list                 # every name, and what is up
   portfor list --up            # only the names something listens on
   portfor list --scope auto    # this worktree's names`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
			&cli.BoolFlag{Name: "leases", Usage: "only leases, with owner pid, age and whether the owner is alive"},
			&cli.BoolFlag{Name: "up", Usage: "only names whose port something listens on (TCP) or is bound to (UDP) now"},
		},
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor list", 0); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			list, err := reg.List(c.Context)
			if err != nil {
				return err
			}
			// What is up is asked for every name, before the list is cut
			// down: a process running in the directory of a name the list
			// leaves out is still flagged.
			up, upErr := listeners(c, reg, list)
			if root := rootContext(c); root.IsSet("scope") && !c.Bool("leases") {
				scope, _, err := resolveScope(root.String("scope"))
				if err != nil {
					return err
				}
				kept := list[:0]
				for _, a := range list {
					if a.Scope == scope && a.Kind == registry.Stable {
						kept = append(kept, a)
					}
				}
				list = kept
			}
			if c.Bool("leases") {
				leases := list[:0]
				for _, a := range list {
					if a.Kind == registry.Lease {
						leases = append(leases, a)
					}
				}
				list = leases
				sort.Slice(list, func(i, j int) bool { return list[i].Port < list[j].Port })
			}
			if upErr != nil && c.Bool("up") {
				return upErr // --up cannot be answered without the sockets
			}
			if c.Bool("up") {
				kept := list[:0]
				for _, a := range list {
					if len(up[a.Port]) > 0 {
						kept = append(kept, a)
					}
				}
				list = kept
			}
			if c.Bool("json") {
				return printJSON(c, list, up)
			}
			if c.Bool("leases") {
				return printLeases(c, list)
			}
			return printTable(c, list, up)
		},
	}
}

// listeners returns what holds each port of list, by port: one lookup for
// all of them, named from list. It is nil, with the error, where the system cannot tell.
func listeners(c *cli.Context, reg *registry.Registry, list []registry.Assignment) (map[int][]registry.Holder, error) {
	if len(list) == 0 {
		return map[int][]registry.Holder{}, nil
	}
	hs, err := reg.WhoOf(c.Context, list)
	if err != nil {
		return nil, err
	}
	up := make(map[int][]registry.Holder, len(hs))
	for _, h := range hs {
		p := int(h.Local.Port())
		up[p] = append(up[p], h)
	}
	return up, nil
}

func printJSON(c *cli.Context, list []registry.Assignment, up map[int][]registry.Holder) error {
	out := make([]listEntry, len(list))
	for i, a := range list {
		out[i] = listEntry{Name: a.ID, Scope: a.Scope, Port: a.Port, Kind: a.Kind.String(), Created: a.Created, Updated: a.Updated, Dir: a.Dir,
			Listeners: []whoEntry{}}
		if a.Kind == registry.Lease {
			alive := a.OwnerAlive()
			out[i].OwnerPID, out[i].OwnerAlive, out[i].Command = a.OwnerPID, &alive, a.Command
		}
		if up != nil {
			isUp := len(up[a.Port]) > 0
			out[i].Up = &isUp
			out[i].Listeners = whoEntries(up[a.Port])
		}
	}
	return writeJSONTo(c.App.Writer, out)
}

func printTable(c *cli.Context, list []registry.Assignment, up map[int][]registry.Holder) error {
	if len(list) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tPORT\tKIND\tUP\tCREATED\tDIR")
	var notes []string
	for _, a := range list {
		scope := printable(a.Scope)
		if scope == "" {
			scope = "-"
		}
		state, elsewhere := upCell(up, a)
		notes = append(notes, elsewhere...)
		// printable: a name written around the registry package (another
		// user of a shared file, with bbolt) may hold anything.
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", printable(a.ID), scope, a.Port, a.Kind, state, a.Created.Local().Format("2006-01-02 15:04"), printable(a.Dir))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(c.App.ErrWriter, "portfor: "+n)
	}
	return nil
}

// upCell is the UP cell of a's row: "-" when nothing holds its port,
// PID/PROGRAM of the first process (+N for the others), "uid N" for a
// socket whose process cannot be seen, "?" when up is nil (the system
// cannot tell); a "!" ends it when a process holding the port runs in the
// directory of other names, and the notes say whose.
func upCell(up map[int][]registry.Holder, a registry.Assignment) (string, []string) {
	if up == nil {
		return "?", nil
	}
	var cells, notes []string
	seen := map[int]bool{}
	flag := ""
	for _, h := range up[a.Port] {
		if h.Hidden {
			if c := "uid " + strconv.FormatUint(uint64(h.UID), 10); !slices.Contains(cells, c) {
				cells = append(cells, c)
			}
			continue
		}
		for _, p := range h.Procs {
			if seen[p.PID] {
				continue
			}
			seen[p.PID] = true
			cells = append(cells, strconv.Itoa(p.PID)+"/"+orDash(clip(p.Program)))
			if e := p.Elsewhere; e != nil {
				flag = "!"
				notes = append(notes, fmt.Sprintf("%s's port %d is held by %s (pid %d) running in %s, the directory of %s",
					printable(a.Key()), a.Port, orDash(clip(p.Program)), p.PID, printable(tildeHome(p.Dir)), printable(e.String())))
			}
		}
	}
	switch len(cells) {
	case 0:
		return "-", nil
	case 1:
		return cells[0] + flag, notes
	}
	return fmt.Sprintf("%s,+%d%s", cells[0], len(cells)-1, flag), notes
}

func printLeases(c *cli.Context, list []registry.Assignment) error {
	if len(list) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tOWNER\tALIVE\tAGE\tCOMMAND")
	now := time.Now()
	for _, a := range list {
		alive := "yes"
		if !a.OwnerAlive() {
			alive = "no"
		}
		owner := strconv.Itoa(a.OwnerPID)
		if a.OwnerNS != 0 && a.OwnerNS != procinfo.Namespace() {
			owner += "@pidns:" + strconv.FormatUint(a.OwnerNS, 10) // not our pid 2
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", a.Port, owner, alive, age(now.Sub(a.Created)), printable(a.Command))
	}
	return tw.Flush()
}

// age formats a duration the way people read ages: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// printable escapes what a terminal would act on (escape sequences, other
// control characters, invalid UTF-8) in text another user or process
// chose, such as a working directory or a command line, so that it prints
// as one plain cell.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
