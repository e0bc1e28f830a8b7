package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/cmd/portfor/internal/portserver"
	"github.com/portfor/portfor/internal/activation"
	"github.com/portfor/portfor/registry"
)

// defaultFDName is the name serve takes among several sockets systemd
// passes (FileDescriptorName= in the socket unit).
const defaultFDName = "portfor"

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

Once it listens, serve says so: a line "portfor: serving ports POOL on ADDRESS"
on stderr (not with -q); the address and a newline on stdout with
--print-address, and on file descriptor N (then closed) with --ready-fd N, for
a parent waiting to connect; READY=1 to systemd when $NOTIFY_SOCKET is set
(and STOPPING=1 when it stops).

Started by systemd with a socket (LISTEN_FDS, LISTEN_PID; a socket unit with
ListenStream=/path), serve takes that socket instead of binding --address; of
several, the one named --fd-name (FileDescriptorName=). It must be a listening
Unix stream socket. See docs/systemd/ for a per-user socket and service.

   portfor serve &                                   # @unittest-portserver, 15000-24999
   PORTSERVER_ADDRESS=@unittest-portserver go test ./...  # or any portpicker user
   exec 3< <(portfor serve -q --print-address)       # in the background
   read -r PORTSERVER_ADDRESS <&3                    # returns once it listens`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Value: portserver.DefaultAddress, Usage: "Unix socket path, or @name for an abstract socket"},
			&cli.StringFlag{Name: "pool", Value: portserver.DefaultPool, Usage: "ports to hand out, e.g. 15000-24999 or 8000-8100,9000"},
			&cli.StringFlag{Name: "mode", Value: "0600", Usage: "permissions of a socket file (octal); widen (0660) to serve a group"},
			&cli.BoolFlag{Name: "verbose", Usage: "log one line per request on stderr"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no startup line on stderr"},
			&cli.BoolFlag{Name: "print-address", Usage: "print the address and a newline on stdout once listening"},
			&cli.IntFlag{Name: "ready-fd", Usage: "write the address and a newline to file descriptor `N` (3 or above) once listening, then close it"},
			&cli.StringFlag{Name: "fd-name", Value: defaultFDName, Usage: "of several sockets passed by systemd, the one with this name (FileDescriptorName=)"},
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
			var ready *os.File
			if c.IsSet("ready-fd") {
				if ready, err = readyFile(c.Int("ready-fd")); err != nil {
					return usagef(hint, "%v", err)
				}
				defer ready.Close()
			}
			// Taken, and the environment cleared, before anything else runs.
			passed, err := activation.Files()
			if err != nil {
				return fmt.Errorf("socket passed by the service manager: %w", err)
			}
			if ready != nil && int(ready.Fd()) < activation.FirstFD+len(passed) {
				return usagef(hint, "--ready-fd %d: that descriptor is a socket passed by the service manager (LISTEN_FDS=%d)", ready.Fd(), len(passed))
			}
			reg, err := openRegistry(c)
			if err != nil {
				return err
			}
			var l net.Listener
			var closeFn func() error
			how := ""
			if len(passed) > 0 {
				l, err = takePassed(passed, c.String("fd-name"))
				if err != nil {
					return err
				}
				closeFn, how = l.Close, " (socket passed by the service manager)"
			} else {
				l, closeFn, err = portserver.Listen(c.String("address"), mode)
				if err != nil {
					return err
				}
			}
			defer closeFn()
			s := &portserver.Server{Registry: reg, Pool: pool}
			if c.Bool("verbose") {
				s.Log = c.App.ErrWriter
			}
			addr := l.Addr().String()
			if err := announce(c, addr, ready, fmt.Sprintf("serving ports %s on %s%s", pool, addr, how)); err != nil {
				return err
			}
			// STOPPING=1 as the shutdown starts, and before serve returns
			// whatever stopped it.
			var once sync.Once
			stopping := func() {
				once.Do(func() {
					if _, err := activation.Notify("STOPPING=1"); err != nil {
						fmt.Fprintf(c.App.ErrWriter, "portfor: warning: %v\n", err)
					}
				})
			}
			stop := context.AfterFunc(c.Context, stopping)
			err = s.Serve(c.Context, l)
			stop()
			stopping()
			return err
		},
	}
}

// readyFile returns the open file descriptor fd, for --ready-fd.
func readyFile(fd int) (*os.File, error) {
	if fd < 3 {
		return nil, fmt.Errorf("--ready-fd %d: want a descriptor of 3 or above (--print-address writes to stdout)", fd)
	}
	// Checked before os.NewFile: a File's finalizer would close a
	// descriptor that is not ours to close.
	if err := activation.Writable(fd); err != nil {
		return nil, fmt.Errorf("--ready-fd %d: %w", fd, err)
	}
	return os.NewFile(uintptr(fd), "ready-fd"), nil
}

// takePassed returns the listener among the sockets passed by the service
// manager.
func takePassed(files []*os.File, name string) (net.Listener, error) {
	f, err := activation.Pick(files, name)
	if err != nil {
		return nil, fmt.Errorf("socket passed by the service manager: %w (--fd-name)", err)
	}
	l, err := activation.UnixListener(f)
	if err != nil {
		return nil, fmt.Errorf("socket passed by the service manager: %w", err)
	}
	return l, nil
}

// announce tells whoever waits that the server listens on addr: systemd
// (READY=1), a parent reading --ready-fd or stdout (--print-address), and
// a person reading stderr (status, unless --quiet).
func announce(c *cli.Context, addr string, ready *os.File, status string) error {
	if _, err := activation.Notify("READY=1\nSTATUS=" + status); err != nil {
		return err
	}
	if c.Bool("print-address") {
		if _, err := fmt.Fprintln(c.App.Writer, addr); err != nil {
			return fmt.Errorf("--print-address: %w", err)
		}
	}
	if ready != nil {
		fd := ready.Fd()
		if err := writeAndClose(ready, addr+"\n"); err != nil {
			return fmt.Errorf("--ready-fd %d: %w", fd, err)
		}
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "portfor: %s\n", status)
	}
	return nil
}

func writeAndClose(f io.WriteCloser, s string) error {
	_, err := io.WriteString(f, s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
