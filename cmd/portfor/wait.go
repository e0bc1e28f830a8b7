package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
		ArgsUsage: "TARGET... [occupied|free] [-t DURATION] [-q] [--status LIST] [--insecure] [-- CMD ARGS...]",
		Description: `A TARGET is one of:
   host:port, [v6]:port, :port, PORT  TCP: something accepts connections (bare: localhost)
   NAME                               an assignment's port on localhost
   http://HOST[:PORT]/PATH            a GET answers below 400 (--status narrows it)
   https://HOST[:PORT]/PATH           the same over TLS (--insecure: any certificate)
   NAME/PATH                          http://localhost:PORT/PATH for NAME's port
   unix:/PATH                         a Unix socket accepts a connection
localhost means both 127.0.0.1 and ::1, whichever the server uses.

occupied (the default): ready as above. free: nothing accepts connections and,
on this host, a server could bind the port again (connections in TIME_WAIT do
not count). For a URL, free is about its host and port: a server answering 503
is not free. For unix:, free means nothing accepts; a socket file left behind
counts as free.

HTTP: redirects are not followed (a 3xx is below 400); HTTP_PROXY and the like
are ignored (the wait asks whether the service answers from here); each try
is a fresh connection. A new server is noticed within milliseconds.
https:// waits run the companion command portfor-https (beside portfor, in
PATH, or $PORTFOR_HTTPS), which keeps TLS out of every other portfor call;
'go install github.com/portfor/portfor/cmd/...@latest' installs both.

--timeout (-t) takes seconds (5, 0.5) or a duration (5s, 500ms); default 30s.
A terminal gets a progress line on stderr (plain, without escape sequences,
when TERM=dumb or NO_COLOR is set); --quiet (-q) drops it. Errors are always
one line on stderr.
Exit status: 0 ready, 1 timed out, 2 usage; after '--', CMD's own status
(127: CMD not found, 126: not executable).

   portfor wait localhost:5432                 # until postgres accepts connections
   portfor wait my-service db:5432 -t 60       # both, within a minute
   portfor wait 8080 free && ./start-server    # until the old server has let go
   portfor wait my-service/health --status 200 -- ./run-tests
   portfor wait https://localhost:8443/ --insecure
   portfor wait unix:/run/app.sock -q -- ./client`,
		// '--' must reach us: flags are parsed by parseWaitArgs. They are
		// declared here for the help text only.
		SkipFlagParsing: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "timeout", Aliases: []string{"t"}, Value: defaultWaitTimeout.String(),
				Usage: "give up after `DURATION`: seconds (5, 0.5) or a duration (5s, 500ms)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress line; errors only"},
			&cli.StringFlag{Name: "status", Usage: "http(s): the `LIST` of statuses that mean ready, e.g. 200, 200-299, 2xx,304 (default: below 400)"},
			&cli.BoolFlag{Name: "insecure", Usage: "https: accept any certificate (do not verify it)"},
		},
		Action: runWait,
	}
}

// waitArgs is a parsed `portfor wait` command line.
type waitArgs struct {
	targets  []string
	state    string // "occupied" or "free"
	timeout  time.Duration
	command  []string // after "--"
	help     bool
	quiet    bool
	status   registry.StatusSet // nil: below 400
	insecure bool
}

// isState reports whether s is a state word.
func isState(s string) bool { return s == registry.StateOccupied || s == registry.StateFree }

// parseWaitArgs reads TARGET... [occupied|free] with -t/--timeout D
// (also --timeout=D), -q/--quiet, --status LIST and --insecure anywhere
// before "--", and CMD ARGS... after it.
func parseWaitArgs(args []string) (waitArgs, error) {
	w := waitArgs{state: registry.StateOccupied, timeout: defaultWaitTimeout}
	value := func(i *int, a string) (string, error) {
		if j := strings.IndexByte(a, '='); j >= 0 {
			return a[j+1:], nil
		}
		if *i+1 == len(args) {
			return "", fmt.Errorf("%s needs a value", a)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, _ := strings.Cut(a, "=")
		switch {
		case a == "--":
			w.command = args[i+1:]
			if len(w.command) == 0 {
				return w, errors.New("missing CMD after '--'")
			}
			i = len(args)
		case a == "-h" || a == "--help" || a == "-help":
			w.help = true
			return w, nil
		case name == "-t" || name == "--timeout" || name == "-timeout":
			v, err := value(&i, a)
			if err != nil {
				return w, err
			}
			d, err := parseDuration(v)
			if err != nil {
				return w, fmt.Errorf("--timeout: %w", err)
			}
			w.timeout = d
		case name == "--status" || name == "-status":
			v, err := value(&i, a)
			if err != nil {
				return w, err
			}
			st, err := registry.ParseStatus(v)
			if err != nil {
				return w, fmt.Errorf("--status: %w", err)
			}
			w.status = st
		case a == "-q" || a == "--quiet" || a == "-quiet":
			w.quiet = true
		case a == "--insecure" || a == "-insecure":
			w.insecure = true
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return w, fmt.Errorf("flag provided but not defined: %s", a)
		default:
			w.targets = append(w.targets, a)
		}
	}
	if n := len(w.targets); n > 1 && isState(w.targets[n-1]) {
		w.state = w.targets[n-1]
		w.targets = w.targets[:n-1]
		if n := len(w.targets); n > 1 && isState(w.targets[n-1]) {
			return w, fmt.Errorf("two states, %s and %s: give one, last", w.targets[n-1], w.state)
		}
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
		return showHelp(c)
	}
	targets, err := resolveTargets(c, w.targets, hint)
	var nf *registry.TargetNotFoundError
	if last := w.targets[len(w.targets)-1]; len(w.targets) > 1 && errors.As(err, &nf) && nf.Target == last {
		// "wait 8080 bogus": a misspelt state more likely than a missing name.
		return usagef(hint, "%q is not a state (occupied|free) nor a registered name", last)
	}
	if err != nil {
		return err
	}
	var https, web bool
	for _, t := range targets {
		web = web || t.Kind == registry.TargetHTTP
		https = https || t.IsHTTPS()
	}
	if w.status != nil && (!web || w.state != registry.StateOccupied) {
		return usagef(hint, "--status applies to http:// and https:// TARGETs, waited for until occupied")
	}
	if w.insecure && !https {
		return usagef(hint, "--insecure needs an https:// TARGET")
	}

	helper := ""
	for _, t := range targets {
		if needsHTTPSHelper(t, w.state) && helper == "" {
			if helper, err = httpsHelper(); err != nil {
				return err
			}
		}
	}

	ctx, cancel := context.WithTimeout(c.Context, w.timeout)
	defer cancel()
	stopProgress := func() {}
	if !w.quiet {
		stopProgress = startProgress(c.App.ErrWriter, targets, w.state)
	}
	opts := registry.WaitOptions{Status: w.status, Insecure: w.insecure}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	failed, fail := context.WithCancel(ctx) // a target that can never be ready ends the wait
	defer fail()
	for i, t := range targets {
		wg.Go(func() {
			if needsHTTPSHelper(t, w.state) {
				errs[i] = waitHTTPS(failed, helper, t, opts)
			} else {
				errs[i] = registry.WaitTarget(failed, t, w.state, opts)
			}
			if errs[i] != nil && !endedWaiting(errs[i]) {
				fail()
			}
		})
	}
	wg.Wait()
	stopProgress()
	if err := errors.Join(errs...); err != nil {
		if c.Context.Err() != nil {
			return c.Context.Err() // interrupted: exit 130
		}
		if failed.Err() != nil && ctx.Err() == nil {
			// Say why it failed, not that the others were stopped.
			var why []error
			for _, e := range errs {
				if e != nil && !endedWaiting(e) {
					why = append(why, e)
				}
			}
			return errors.Join(why...)
		}
		return err
	}
	if len(w.command) > 0 {
		return runCommand(c.Context, w.command, c.App.Writer, c.App.ErrWriter)
	}
	return nil
}

// endedWaiting reports whether err says that a wait's context ended (a
// timeout or a cancel) rather than that its target can never be ready.
func endedWaiting(err error) bool {
	var we *registry.WaitError
	var te *registry.TargetWaitError
	return errors.As(err, &we) || errors.As(err, &te)
}

// showHelp prints the running command's help, as 'portfor help CMD' does.
// cli.ShowCommandHelp looks the name up among the subcommands of the
// context it is given, so it needs the parent's.
func showHelp(c *cli.Context) error {
	if lineage := c.Lineage(); len(lineage) > 1 {
		return cli.ShowCommandHelp(lineage[1], c.Command.Name)
	}
	return cli.ShowCommandHelp(c, c.Command.Name)
}

// resolveTargets turns each target into a registry.Target (see
// Registry.ResolveTarget). Bad ports and addresses are usage errors that
// point to hint's help. The registry is opened only when a target may be
// a name, so a mistyped address writes nothing.
func resolveTargets(c *cli.Context, targets []string, hint string) ([]registry.Target, error) {
	out := make([]registry.Target, len(targets))
	var names []int
	for i, s := range targets {
		t, err := registry.ParseTarget(s)
		switch {
		case err == nil:
			out[i] = t
		case errors.Is(err, registry.ErrInvalidPort) || registry.ValidateID(s) != nil:
			return nil, usagef(hint, "%v", err)
		default:
			names = append(names, i)
		}
	}
	if len(names) == 0 {
		return out, nil
	}
	reg, err := openRegistry(c)
	if err != nil {
		return nil, err
	}
	for _, i := range names {
		t, err := reg.ResolveTarget(c.Context, targets[i])
		if errors.Is(err, registry.ErrInvalidAddress) {
			return nil, usagef(hint, "%v", err)
		}
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// exitError carries a child command's exit status through run.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

// runCommand runs argv with our standard streams and returns its exit
// status as an *exitError (nil for 0). SIGINT and SIGTERM are passed on.
// A command that cannot be started exits 127 when it is not found and 126
// when it is found but cannot be run, as shells and env(1) do, with one
// line on stderr.
func runCommand(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	return superviseChild(cmd, stderr, os.Interrupt, syscall.SIGTERM)
}

// superviseChild starts cmd, passes sigs on to it until it exits, and
// returns its status as an *exitError (nil for 0; 128+N for signal N). A
// command that cannot be started is 127 when it is not found and 126 when
// it cannot be run, with one line on stderr.
func superviseChild(cmd *exec.Cmd, stderr io.Writer, sigs ...os.Signal) error {
	caught := make(chan os.Signal, len(sigs))
	signal.Notify(caught, sigs...)
	defer signal.Stop(caught)
	if err := cmd.Start(); err != nil {
		code, why := startFailure(err)
		fmt.Fprintf(stderr, "portfor: %s: %s\n", printable(cmd.Args[0]), why)
		return &exitError{code: code}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-caught:
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

// Exit statuses for a command that could not be started, as shells use them.
const (
	exitCannotRun = 126 // found, but not executable
	exitNotFound  = 127 // no such command
)

// startFailure maps an error from exec.Cmd.Start to an exit status and a
// few words saying why.
func startFailure(err error) (int, string) {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return exitNotFound, "command not found"
	case errors.Is(err, exec.ErrDot):
		return exitCannotRun, "found only in the current directory (write ./NAME to run it from there)"
	case errors.Is(err, fs.ErrPermission):
		return exitCannotRun, "permission denied (not an executable file)"
	case errors.Is(err, syscall.ENOEXEC):
		return exitCannotRun, "exec format error (not a program this system can run)"
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return exitCannotRun, "cannot run: " + oneLine(err.Error())
}

// startProgress shows, on a terminal only, one line saying what is being
// waited for and for how long, rewritten every 100 ms. It returns the
// function that stops it and clears the line. With TERM=dumb or NO_COLOR
// set the line carries no escape sequence: it is rewritten after a
// carriage return and cleared with spaces.
func startProgress(w io.Writer, targets []registry.Target, state string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	plain := os.Getenv("TERM") == "dumb" || os.Getenv("NO_COLOR") != ""
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = printable(t.String())
	}
	what := fmt.Sprintf("%s to be %s", strings.Join(names, ", "), state)
	start := time.Now()
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		width := 0 // of the last line written, for plain clearing
		for {
			line := fmt.Sprintf("portfor: waiting %.1fs for %s", time.Since(start).Seconds(), what)
			if plain {
				fmt.Fprintf(f, "\r%-*s", width, line)
				width = max(width, len(line))
			} else {
				fmt.Fprint(f, "\r\033[K"+line)
			}
			select {
			case <-quit:
				if plain {
					fmt.Fprintf(f, "\r%*s\r", width, "")
				} else {
					fmt.Fprint(f, "\r\033[K")
				}
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
