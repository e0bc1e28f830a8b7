package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// defaultWaitTimeout bounds a wait when --timeout is not given, so that a
// script never hangs for ever on a service that will not come.
const defaultWaitTimeout = 30 * time.Second

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until every TARGET is occupied (default) or free, then optionally run CMD",
		ArgsUsage: "TARGET... [occupied|free] [--timeout DURATION] [-- CMD ARGS...]",
		Description: `A TARGET is host:port, [v6]:port, :port, a bare port (localhost) or the NAME of an
assignment (its port on localhost). localhost means both 127.0.0.1 and ::1.

occupied: something accepts connections. free: nothing does and a server could
bind the port again (connections in TIME_WAIT do not count).

--timeout (-t) takes seconds (5, 0.5) or a duration (5s, 500ms); default 30s.
Exit status: 0 done, 1 timed out, 2 usage; after '--', CMD's own status.

   portfor wait localhost:5432                 # until postgres accepts connections
   portfor wait my-service db:5432 -t 60       # both, within a minute
   portfor wait 8080 free && ./start-server    # until the old server has let go
   portfor wait :8080 -- curl -s localhost:8080/health`,
		SkipFlagParsing: true, // '--' must reach us: flags are parsed by parseWaitArgs
		Action:          runWait,
	}
}

// waitArgs is a parsed `portfor wait` command line.
type waitArgs struct {
	targets []string
	state   string // "occupied" or "free"
	timeout time.Duration
	command []string // after "--"
	help    bool
}

// parseWaitArgs reads TARGET... [occupied|free] with --timeout/-t
// (also --timeout=D) anywhere before "--", and CMD ARGS... after it.
func parseWaitArgs(args []string) (waitArgs, error) {
	w := waitArgs{state: "occupied", timeout: defaultWaitTimeout}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			w.command = args[i+1:]
			if len(w.command) == 0 {
				return w, errors.New("missing CMD after '--'")
			}
			i = len(args)
		case a == "-h" || a == "--help":
			w.help = true
			return w, nil
		case a == "-t" || a == "--timeout" || a == "-timeout":
			if i+1 == len(args) {
				return w, fmt.Errorf("%s needs a value", a)
			}
			i++
			d, err := parseDuration(args[i])
			if err != nil {
				return w, fmt.Errorf("--timeout: %w", err)
			}
			w.timeout = d
		case strings.HasPrefix(a, "--timeout=") || strings.HasPrefix(a, "-t="):
			d, err := parseDuration(a[strings.IndexByte(a, '=')+1:])
			if err != nil {
				return w, fmt.Errorf("--timeout: %w", err)
			}
			w.timeout = d
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return w, fmt.Errorf("flag provided but not defined: %s", a)
		default:
			w.targets = append(w.targets, a)
		}
	}
	if n := len(w.targets); n > 1 && (w.targets[n-1] == "occupied" || w.targets[n-1] == "free") {
		w.state = w.targets[n-1]
		w.targets = w.targets[:n-1]
	}
	if len(w.targets) == 0 {
		return w, errors.New("missing TARGET")
	}
	return w, nil
}

func runWait(c *cli.Context) error {
	const hint = "portfor wait"
	w, err := parseWaitArgs(c.Args().Slice())
	if err != nil {
		return usagef(hint, "%v", err)
	}
	if w.help {
		return cli.ShowCommandHelp(c, "wait")
	}
	reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	addrs, err := resolveTargets(c.Context, reg, w.targets)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(c.Context, w.timeout)
	defer cancel()
	stopProgress := startProgress(c.App.ErrWriter, addrs, w.state)
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			if w.state == "free" {
				errs[i] = registry.WaitFree(ctx, a)
			} else {
				errs[i] = registry.WaitOccupied(ctx, a)
			}
		})
	}
	wg.Wait()
	stopProgress()
	if err := errors.Join(errs...); err != nil {
		if c.Context.Err() != nil {
			return c.Context.Err() // interrupted: exit 130
		}
		return err
	}
	if len(w.command) > 0 {
		return runCommand(c.Context, w.command, c.App.Writer, c.App.ErrWriter)
	}
	return nil
}

// resolveTargets turns each target into an address (see Registry.Resolve).
func resolveTargets(ctx context.Context, reg *registry.Registry, targets []string) ([]registry.HostPort, error) {
	addrs := make([]registry.HostPort, len(targets))
	for i, t := range targets {
		a, err := reg.Resolve(ctx, t)
		if errors.Is(err, registry.ErrInvalidAddress) {
			return nil, usagef("portfor wait", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	return addrs, nil
}

// exitError carries a child command's exit status through run.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

// runCommand runs argv with our standard streams and returns its exit
// status as an *exitError (nil for 0). SIGINT and SIGTERM are passed on.
func runCommand(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", argv[0], err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			code = 128 + int(st.Signal())
		}
		return &exitError{code: code}
	}
	return err
}

// startProgress shows, on a terminal only, one line saying what is being
// waited for and for how long, rewritten every 100 ms. It returns the
// function that stops it and clears the line.
func startProgress(w io.Writer, addrs []registry.HostPort, state string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	names := make([]string, len(addrs))
	for i, a := range addrs {
		names[i] = a.String()
	}
	what := fmt.Sprintf("%s to be %s", strings.Join(names, ", "), state)
	start := time.Now()
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			fmt.Fprintf(f, "\r\033[Kportfor: waiting %.1fs for %s", time.Since(start).Seconds(), what)
			select {
			case <-quit:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}
