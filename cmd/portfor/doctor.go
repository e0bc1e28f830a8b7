package main

import (
	"fmt"

	"github.com/portfor/portfor/registry"
	"github.com/urfave/cli/v2"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check the registry (and with --fix, repair what is safe); exit 1 if problems remain",
		Description: `Checks file permissions and owners, the schema, bbolt's page structure and the
agreement of the id and port indexes (registry and lease file), ports held
both by a name and by a live lease (a registry file restored from an older
copy), and leased ports held by a process other than the owner or its
children: each of those is a problem. What killed processes leave behind
(leases whose owner is gone, requests of callers that are gone, lease files
of earlier boots) is cleaned up by portfor itself and counted as a note. It
exits 0 when nothing needs a person or --fix, so it can serve as a health
check, and 1 otherwise.

--fix repairs permissions wider than portfor's and index drift, ends a live
lease on a name's port (the name is the lasting claim; the lease's process
keeps running), removes the leftovers, and says what it changed. It reads
under the shared lock and takes the exclusive lock only to repair, so other
callers barely wait.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "fix", Usage: "repair what is safe to repair"},
		},
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, "portfor doctor", 0); err != nil {
				return err
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			rep, err := reg.Doctor(c.Context, registry.DoctorOptions{Fix: c.Bool("fix")})
			if err != nil {
				return err
			}
			for _, f := range rep.Findings {
				// printable: findings quote names, directories and the
				// program names and command lines of processes, which
				// others chose.
				fmt.Fprintf(c.App.Writer, "%s: %s\n", f.Severity, printable(f.Text))
			}
			n := rep.Problems()
			switch {
			case n == 0:
				return nil
			case c.Bool("fix"):
				return fmt.Errorf("%d problem(s) in %s need a person", n, reg.Path())
			}
			return fmt.Errorf("%d problem(s) in %s (portfor doctor --fix repairs the safe ones)", n, reg.Path())
		},
	}
}
