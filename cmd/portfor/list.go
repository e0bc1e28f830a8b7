package main

import (
	"encoding/json"
	"fmt"
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
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "print every assignment, sorted by scope and name (--leases: leases and their owners)",
		Description: `With --scope (or $PORTFOR_SCOPE), only the names of that scope; --scope auto
is this git worktree's (none in the main worktree: its names are the global ones).`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
			&cli.BoolFlag{Name: "leases", Usage: "only leases, with owner pid, age and whether the owner is alive"},
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
			if c.Bool("json") {
				return printJSON(c, list)
			}
			if c.Bool("leases") {
				return printLeases(c, list)
			}
			return printTable(c, list)
		},
	}
}

func printJSON(c *cli.Context, list []registry.Assignment) error {
	out := make([]listEntry, len(list))
	for i, a := range list {
		out[i] = listEntry{Name: a.ID, Scope: a.Scope, Port: a.Port, Kind: a.Kind.String(), Created: a.Created, Updated: a.Updated, Dir: a.Dir}
		if a.Kind == registry.Lease {
			alive := a.OwnerAlive()
			out[i].OwnerPID, out[i].OwnerAlive, out[i].Command = a.OwnerPID, &alive, a.Command
		}
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printTable(c *cli.Context, list []registry.Assignment) error {
	if len(list) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tPORT\tKIND\tCREATED\tDIR")
	for _, a := range list {
		scope := printable(a.Scope)
		if scope == "" {
			scope = "-"
		}
		// printable: a name written around the registry package (another
		// user of a shared file, with bbolt) may hold anything.
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", printable(a.ID), scope, a.Port, a.Kind, a.Created.Local().Format("2006-01-02 15:04"), printable(a.Dir))
	}
	return tw.Flush()
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
