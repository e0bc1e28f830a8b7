package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// listEntry is the JSON form of an assignment.
type listEntry struct {
	Name    string    `json:"name"`
	Port    int       `json:"port"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Dir     string    `json:"dir,omitempty"`
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "print every assignment, sorted by name",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
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
			if c.Bool("json") {
				return printJSON(c, list)
			}
			return printTable(c, list)
		},
	}
}

func printJSON(c *cli.Context, list []registry.Assignment) error {
	out := make([]listEntry, len(list))
	for i, a := range list {
		out[i] = listEntry{Name: a.ID, Port: a.Port, Kind: a.Kind.String(), Created: a.Created, Updated: a.Updated, Dir: a.Dir}
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
	fmt.Fprintln(tw, "NAME\tPORT\tKIND\tCREATED\tDIR")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", a.ID, a.Port, a.Kind, a.Created.Local().Format("2006-01-02 15:04"), a.Dir)
	}
	return tw.Flush()
}
