package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// whoEntry is the JSON form of a socket and its holders.
type whoEntry struct {
	Proto     string       `json:"proto"`
	Address   string       `json:"address"`
	Port      int          `json:"port"`
	UID       uint32       `json:"uid"`
	User      string       `json:"user,omitempty"`
	Processes []whoProcess `json:"processes"`
	Hidden    bool         `json:"hidden"` // no process of it could be seen
	Name      string       `json:"name,omitempty"`
	Scope     string       `json:"scope,omitempty"`
}

type whoProcess struct {
	PID     int    `json:"pid"`
	Program string `json:"program"`
	Command string `json:"command"`
	Dir     string `json:"dir"`
	// Elsewhere: the process runs in the directory of other names than
	// the port's own (registry.Process.Elsewhere).
	Elsewhere *whoHome `json:"elsewhere,omitempty"`
}

type whoHome struct {
	Dir   string   `json:"dir"`
	Scope string   `json:"scope,omitempty"`
	Names []string `json:"names"`
}

func whoCommand() *cli.Command {
	return &cli.Command{
		Name:      "who",
		Usage:     "print what listens on (TCP) or is bound to (UDP) a port: pid, user, program, directory, name",
		ArgsUsage: "PORT|NAME",
		Description: `One line per socket and process holding it, IPv4 and IPv6:

   PROTO ADDRESS pid PID USER PROGRAM DIR (NAME, scope SCOPE): COMMAND

NAME stands for its port (in --scope's scope). Another user's socket whose
processes this user may not see shows its uid only, and a note on stderr says
so (root sees them all). Exit status: 0 if something holds the port, 1 if
nothing does, 2 for a bad PORT or an unknown NAME. Linux and macOS; macOS
asks lsof, which without root does not show other users' sockets at all.

Examples:
   portfor who 8080             # who holds port 8080
   portfor who web              # who holds web's port
   portfor who --json 5432      # the same as a JSON array, for scripts`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array instead of lines"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor who"
			if err := checkArgs(c, hint, 1, "PORT|NAME"); err != nil {
				return err
			}
			reg, port, err := portOrName(c, hint)
			if err != nil {
				return err
			}
			holders, err := reg.Who(c.Context, port)
			if err != nil {
				return err
			}
			return reportWho(c.App.Writer, c.App.ErrWriter, holders, port, c.Bool("json"))
		},
	}
}

// reportWho prints holders (a table, or JSON) and returns nil when
// something holds port, or the error that makes the exit status 1 when
// nothing does. A note on stderr says when some processes could not be
// seen. The full command line and quickWho share it.
func reportWho(stdout, stderr io.Writer, holders []registry.Holder, port int, asJSON bool) error {
	var err error
	if asJSON {
		err = writeJSONTo(stdout, whoEntries(holders))
	} else {
		err = printWho(stdout, holders)
	}
	if err != nil {
		return err
	}
	if len(holders) == 0 {
		return fmt.Errorf("nothing listens on or is bound to port %d", port)
	}
	for _, h := range holders {
		if h.Hidden {
			fmt.Fprintln(stderr, hiddenNote())
			break
		}
	}
	return nil
}

// hiddenNote says why some sockets came without their processes. Without
// root, they are most likely other users'. Root may inspect every process
// its /proc shows (given CAP_SYS_PTRACE, which containers often drop):
// there such a socket is held by no process (the kernel's own, such as a
// VXLAN or WireGuard port, or one in flight over a Unix socket) or by
// processes in another pid namespace.
func hiddenNote() string {
	if os.Geteuid() != 0 {
		return "portfor: the processes holding some sockets could not be seen (other users' need root)"
	}
	return "portfor: no process in sight holds some sockets (the kernel's own or ones passed over a Unix socket, processes in another pid namespace, or other users' without CAP_SYS_PTRACE)"
}

// portOrName opens the registry and reads the command's one argument,
// PORT or NAME: a registered name stands for its port (in --scope's scope).
func portOrName(c *cli.Context, hint string) (*registry.Registry, int, error) {
	reg, err := openRegistry(c)
	if err != nil {
		return nil, 0, err
	}
	arg := c.Args().First()
	if isDigits(arg) {
		port, err := parsePort(hint, arg)
		return reg, port, err
	}
	a, err := reg.Lookup(c.Context, arg)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, 0, usagef(hint, "%q is neither a port nor a registered name", printable(arg))
	}
	if err != nil {
		return nil, 0, err
	}
	return reg, a.Port, nil
}

func printWho(w io.Writer, holders []registry.Holder) error {
	var b strings.Builder
	for _, l := range whoLines(holders) {
		b.WriteString(l + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// whoLines returns the lines of `portfor who` for holders, without their
// newlines.
func whoLines(holders []registry.Holder) []string {
	var out []string
	for _, h := range holders {
		user := printable(h.User)
		if user == "" {
			user = "uid:" + strconv.FormatUint(uint64(h.UID), 10)
		}
		reg := ""
		if h.Name != "" {
			reg = " (" + printable(h.Name)
			if h.Scope != "" {
				reg += ", scope " + printable(h.Scope)
			}
			reg += ")"
		}
		if h.Hidden {
			out = append(out, fmt.Sprintf("%s %s uid %d %s%s: process not visible", h.Proto, h.Local, h.UID, user, reg))
			continue
		}
		for _, p := range h.Procs {
			prog, dir, cmd := clip(p.Program), printable(p.Dir), printable(p.Command)
			if prog == "" {
				prog = "-"
			}
			if dir == "" {
				dir = "-"
			}
			out = append(out, fmt.Sprintf("%s %s pid %d %s %s %s%s: %s", h.Proto, h.Local, p.PID, user, prog, dir, reg, cmd))
		}
	}
	return out
}

// whoEntries is the JSON form of holders.
func whoEntries(holders []registry.Holder) []whoEntry {
	out := make([]whoEntry, len(holders))
	for i, h := range holders {
		out[i] = whoEntry{Proto: h.Proto, Address: h.Local.Addr().String(), Port: int(h.Local.Port()), UID: h.UID, User: h.User,
			Processes: whoProcesses(h.Procs), Hidden: h.Hidden, Name: h.Name, Scope: h.Scope}
	}
	return out
}

// whoProcesses is the JSON form of ps, never null.
func whoProcesses(ps []registry.Process) []whoProcess {
	out := make([]whoProcess, 0, len(ps))
	for _, p := range ps {
		wp := whoProcess{PID: p.PID, Program: p.Program, Command: p.Command, Dir: p.Dir}
		if e := p.Elsewhere; e != nil {
			wp.Elsewhere = &whoHome{Dir: e.Dir, Scope: e.Scope, Names: e.Names}
		}
		out = append(out, wp)
	}
	return out
}

// writeJSON writes v as indented JSON to the command's stdout.
func writeJSON(c *cli.Context, v any) error { return writeJSONTo(c.App.Writer, v) }

// writeJSONTo writes v to w as indented JSON, as json.Encoder does, with
// DEL and the C1 controls (U+0080-U+009F) escaped too: encoding/json
// escapes only the C0 ones, and a terminal acts on U+009B as on ESC [.
// Program names, command lines, directories and names are chosen by other
// processes and users, and --json is read on terminals too. These
// characters only occur inside JSON strings, where the escape means the
// same character.
func writeJSONTo(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if bytes.IndexByte(b, 0x7f) >= 0 || bytes.IndexByte(b, 0xc2) >= 0 { // DEL; C1 is 0xc2 0x80-0x9f in UTF-8
		var esc bytes.Buffer
		for _, r := range string(b) {
			if r == 0x7f || r >= 0x80 && r <= 0x9f {
				fmt.Fprintf(&esc, `\u%04x`, r)
			} else {
				esc.WriteRune(r)
			}
		}
		b = esc.Bytes()
	}
	_, err = w.Write(b)
	return err
}
