package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/registry"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "answer portpicker's port-server protocol with leases from the registry",
		Description: `Listens on a Unix socket (--address; a leading @ means Linux's abstract namespace)
for portpicker clients: each sends its pid and a newline, and gets back a port
leased to that pid, or a closed connection when none can be given (pids of 1 and
below, pids that do not exist, and, unless the client is root, pids of another
user are refused). A socket file is made with --mode 0600: only your user may
connect. Leases live in the registry, so they survive a restart and agree with
'portfor pick' run beside the server.
Stops cleanly on SIGINT or SIGTERM, removing a socket file it made.

Any local user may take an abstract name (the default @unittest-portserver)
first; serve then fails naming that user. On a shared host give a socket path
in a directory only your user (or group) can write. Clients ('portfor pick')
trust only a server run by their own user or root, and never a port below 1024.
Where the system cannot tell who a client is (the BSDs), only a server run by
an unprivileged user on a socket of mode 0600 answers, and only for that
user's processes.

   portfor serve &                                   # @unittest-portserver, 15000-24999
   PORTSERVER_ADDRESS=@unittest-portserver go test ./...  # or any portpicker user`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Value: portserver.DefaultAddress, Usage: "Unix socket path, or @name for an abstract socket"},
			&cli.StringFlag{Name: "pool", Value: portserver.DefaultPool, Usage: "ports to hand out, e.g. 15000-24999 or 8000-8100,9000"},
			&cli.StringFlag{Name: "mode", Value: "0600", Usage: "permissions of a socket file (octal); widen (0660) to serve a group"},
			&cli.BoolFlag{Name: "verbose", Usage: "log one line per request on stderr"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor serve"
			if err := checkArgs(c, hint, 0); err != nil {
				return err
			}
			pool, err := registry.ParsePorts(c.String("pool"))
			if err != nil {
				return usagef(hint, "--pool: %v", err)
			}
			m, err := strconv.ParseUint(c.String("mode"), 8, 32)
			if err != nil || m == 0 || m > 0o777 {
				return usagef(hint, "--mode %q: want octal permissions such as 0600 or 0660", c.String("mode"))
			}
			mode := os.FileMode(m)
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			l, closeFn, err := portserver.Listen(c.String("address"), mode)
			if err != nil {
				return err
			}
			defer closeFn()
			s := &portserver.Server{Registry: reg, Pool: pool}
			if c.Bool("verbose") {
				s.Log = c.App.ErrWriter
			}
			fmt.Fprintf(c.App.ErrWriter, "portfor: serving ports %s on %s\n", pool, c.String("address"))
			return s.Serve(c.Context, l)
		},
	}
}
