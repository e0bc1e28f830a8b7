package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// defaultStopTimeout is how long stop waits for the port after SIGTERM.
const defaultStopTimeout = 5 * time.Second

// stopEntry is the JSON form of what stop did.
type stopEntry struct {
	Port       int          `json:"port"`
	Terminated []whoProcess `json:"terminated"` // sent SIGTERM
	Killed     []whoProcess `json:"killed"`     // sent SIGKILL too
	LeftAlone  []stopSpared `json:"left_alone"`
	Held       []whoEntry   `json:"held"` // the sockets on the port at the end
}

type stopSpared struct {
	Proto   string `json:"proto"`
	Address string `json:"address"`
	whoProcess
	UID    uint32 `json:"uid"`
	User   string `json:"user,omitempty"`
	Reason string `json:"reason"`
}

// stopReasons explain why stop left a holder alone.
var stopReasons = map[registry.StopReason]string{
	registry.ReasonNotYours:     "another user's process (only root stops those)",
	registry.ReasonHidden:       "no process holding it can be seen (another user's without root, or in another pid namespace)",
	registry.ReasonCaller:       "portfor's own process or one of its parents",
	registry.ReasonInit:         "pid 1, init (a systemd socket unit stops with systemctl)",
	registry.ReasonUnidentified: "the process cannot be identified for certain (another pid namespace)",
	registry.ReasonDenied:       "the system refused the signal",
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop what listens on (TCP) or is bound to (UDP) a port: SIGTERM, then with --kill SIGKILL",
		ArgsUsage: "PORT|NAME",
		Description: `Sends SIGTERM to every process listening (TCP) or bound (UDP) on the port,
IPv4 and IPv6, waits up to --timeout for them to let go of it, and with --kill
then sends SIGKILL to those still holding it. NAME stands for its port (in
--scope's scope). Only your own processes are signalled (root's: any), never
portfor itself, the processes it runs under, nor pid 1. A process is signalled
only if it still holds the port at that moment: its pid, start time and socket
are checked then (on Linux through a pidfd), so a pid reused meanwhile is safe.

One line per process on stdout:
   stopped PROGRAM (pid PID) in DIR: SIGTERM
   killed PROGRAM (pid PID) in DIR: SIGKILL
   signalled PROGRAM (pid PID) in DIR: SIGTERM      it still holds the port
   left alone: PROGRAM (pid PID) of user USER in DIR: WHY
then "still held: " and the line 'portfor who' prints for any other holder left
(one that came since, or one that could not be seen).

--timeout (-t) takes seconds (5, 0.5) or a duration (5s, 500ms); default 5s.
After SIGKILL stop waits up to 3s more.
Exit status: 0 the port is free (nothing held it: a note on stderr), 1
something still holds it, 2 for a bad PORT or an unknown NAME. Linux and macOS
(through lsof, without pidfds: see docs/design.md).

Examples:
   portfor stop 8080                # SIGTERM what holds 8080, wait until it lets go
   portfor stop web && npm start    # restart web's server (exit 0 if none ran)
   portfor stop web --kill -t 2     # SIGKILL what still holds it after 2s
   portfor stop --json 5432         # what was done, as JSON`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "timeout", Aliases: []string{"t"}, Value: defaultStopTimeout.String(),
				Usage: "wait up to `DURATION` after SIGTERM: seconds (5, 0.5) or a duration (5s, 500ms)"},
			&cli.BoolFlag{Name: "kill", Usage: "send SIGKILL to what still holds the port after --timeout"},
			&cli.BoolFlag{Name: "json", Usage: "print what was done as a JSON object instead of lines"},
		},
		Action: func(c *cli.Context) error {
			const hint = "portfor stop"
			if err := checkArgs(c, hint, 1, "PORT|NAME"); err != nil {
				return err
			}
			wait, err := parseDuration(c.String("timeout"))
			if err != nil {
				return usagef(hint, "--timeout: %v", err)
			}
			reg, port, err := portOrName(c, hint)
			if err != nil {
				return err
			}
			res, err := reg.Stop(c.Context, port, registry.StopOptions{Wait: wait, Kill: c.Bool("kill")})
			held := errors.Is(err, registry.ErrStillHeld)
			// What was done is printed even when the wait was
			// interrupted; nothing is for an error before any.
			if err == nil || held || len(res.Terminated)+len(res.LeftAlone) > 0 {
				if c.Bool("json") {
					if werr := writeJSON(c, stopJSON(res)); werr != nil {
						return werr
					}
				} else if werr := printStop(c, res); werr != nil {
					return werr
				}
			}
			switch {
			case err != nil && !held:
				return err
			case held:
				msg := fmt.Sprintf("port %d is still held", port)
				if len(res.Terminated) > 0 {
					msg += " after " + wait.String()
				}
				if !c.Bool("kill") && slices.ContainsFunc(res.Terminated, func(p registry.Process) bool { return holding(res.Held, p.PID) }) {
					msg += " (--kill sends SIGKILL)"
				}
				return errors.New(msg)
			case len(res.Terminated) == 0:
				fmt.Fprintf(c.App.ErrWriter, "portfor: nothing listens on or is bound to port %d\n", port)
			}
			return nil
		},
	}
}

// holding reports whether pid holds one of hs.
func holding(hs []registry.Holder, pid int) bool {
	return slices.ContainsFunc(hs, func(h registry.Holder) bool {
		return slices.ContainsFunc(h.Procs, func(p registry.Process) bool { return p.PID == pid })
	})
}

// procLine is "PROGRAM (pid PID)[ of user USER] in DIR", for a line of
// stop's; user is printed when not "".
func procLine(p registry.Process, user string) string {
	s := "pid " + strconv.Itoa(p.PID)
	if prog := clip(p.Program); prog != "" {
		s = prog + " (" + s + ")"
	}
	if user != "" {
		s += " of user " + user
	}
	if dir := printable(p.Dir); dir != "" {
		s += " in " + dir
	}
	return s
}

func printStop(c *cli.Context, res registry.StopResult) error {
	var b strings.Builder
	killed := map[int]bool{}
	for _, p := range res.Killed {
		killed[p.PID] = true
	}
	for _, p := range res.Terminated {
		switch {
		case killed[p.PID]:
			fmt.Fprintf(&b, "killed %s: SIGKILL\n", procLine(p, ""))
		case holding(res.Held, p.PID):
			fmt.Fprintf(&b, "signalled %s: SIGTERM\n", procLine(p, ""))
		default:
			fmt.Fprintf(&b, "stopped %s: SIGTERM\n", procLine(p, ""))
		}
	}
	for _, s := range res.LeftAlone {
		user := printable(s.User)
		if user == "" {
			user = "uid:" + strconv.FormatUint(uint64(s.UID), 10)
		}
		what := procLine(s.Process, user)
		if s.Process.PID == 0 {
			what = fmt.Sprintf("%s %s of user %s", s.Proto, s.Local, user)
		}
		fmt.Fprintf(&b, "left alone: %s: %s\n", what, stopReasons[s.Reason])
	}
	for _, l := range whoLines(unexplained(res)) {
		b.WriteString("still held: " + l + "\n")
	}
	_, err := c.App.Writer.Write([]byte(b.String()))
	return err
}

// unexplained returns the sockets of res.Held, each with the processes
// holding it that no line of stop's names already: one that took the port
// since stop looked, or another user's that could not be seen then.
func unexplained(res registry.StopResult) []registry.Holder {
	named := map[int]bool{}
	for _, p := range res.Terminated {
		named[p.PID] = true
	}
	hidden := map[string]bool{}
	for _, s := range res.LeftAlone {
		named[s.Process.PID] = s.Process.PID != 0
		if s.Process.PID == 0 {
			hidden[s.Proto+" "+s.Local.String()] = true
		}
	}
	var out []registry.Holder
	for _, h := range res.Held {
		if h.Hidden {
			if !hidden[h.Proto+" "+h.Local.String()] {
				out = append(out, h)
			}
			continue
		}
		h.Procs = slices.DeleteFunc(slices.Clone(h.Procs), func(p registry.Process) bool { return named[p.PID] })
		if len(h.Procs) > 0 {
			out = append(out, h)
		}
	}
	return out
}

func stopJSON(res registry.StopResult) stopEntry {
	e := stopEntry{Port: res.Port, Terminated: whoProcesses(res.Terminated), Killed: whoProcesses(res.Killed),
		LeftAlone: []stopSpared{}, Held: whoEntries(res.Held)}
	for _, s := range res.LeftAlone {
		p := whoProcesses([]registry.Process{s.Process})[0]
		e.LeftAlone = append(e.LeftAlone, stopSpared{Proto: s.Proto, Address: s.Local.Addr().String(), whoProcess: p,
			UID: s.UID, User: s.User, Reason: string(s.Reason)})
	}
	return e
}
