package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/oneline"
	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/registry"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1   // the operation failed: not found, timeout, port taken
	exitUsage       = 2   // the command line is wrong
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM, as shells report it
)

// usageError is a mistake on the command line; it exits 2 with a hint.
type usageError struct {
	msg  string
	hint string // the command whose help to suggest, e.g. "portfor bind"
}

func (e *usageError) Error() string { return e.msg }

func usagef(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// run is the whole command: it parses args (args[0] is the program name),
// does the work, writes the answer to stdout and at most one line to stderr
// on failure, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	code := exitOK
	if quickHit(ctx, args, stdout, stderr, &code) || quickRun(ctx, args, stdout, stderr, &code) || quickWho(ctx, args, stdout, stderr, &code) {
		return code
	}
	return runApp(ctx, args, stdout, stderr)
}

// runApp is run without the quick path: the whole command line.
func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Metadata = map[string]any{rawArgs: args}
	err := app.RunContext(ctx, interspersed(app, args))
	// A deprecation note is a line of its own on success; on failure it
	// joins the error's line, so that stderr still has one line.
	if note, ok := app.Metadata[deprecated].(string); ok {
		if err == nil {
			fmt.Fprintf(stderr, "portfor: warning: %s ($PORTFOR_LOCK_TIMEOUT); the old spelling goes in the next release\n", note)
		} else {
			err = &notedError{err: err, note: note}
		}
	}
	return report(ctx, err, stderr)
}

// deprecated is the app.Metadata key of a deprecation note.
const deprecated = "deprecated"

// notedError is an error with a note after it.
type notedError struct {
	err  error
	note string
}

func (e *notedError) Error() string { return e.err.Error() + " (" + e.note + ")" }
func (e *notedError) Unwrap() error { return e.err }

// report maps an error to its exit code and prints it as one line.
func report(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var ee *exitError
	code := exitFailed
	switch {
	case errors.As(err, &ee):
		return ee.code // a child's status, or an answer already printed
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "portfor: interrupted")
		return exitInterrupted
	case errors.As(err, &ue):
		code = exitUsage
		msg := fmt.Sprintf("%s (try '%s --help')", ue.msg, ue.hint)
		if ne := (*notedError)(nil); errors.As(err, &ne) {
			msg += " (" + ne.note + ")"
		}
		err = errors.New(msg)
	case errors.Is(err, registry.ErrInvalidID), errors.Is(err, registry.ErrInvalidPort), errors.Is(err, registry.ErrInvalidAddress):
		code = exitUsage
	}
	fmt.Fprintln(stderr, "portfor: "+oneLine(err.Error()))
	return code
}

// oneLine makes a message one line that is safe on a terminal (see
// package oneline): a message may carry text a server or another user
// chose, such as a certificate's names or a file name.
func oneLine(s string) string { return oneline.Clean(s) }

// version says which portfor this is, from the build information Go
// records: the module version for `go install …@v1.2.3`; for a build from
// a checkout, the version Go derived plus the commit, its date and whether
// the tree had changes; "(devel)" when Go recorded nothing (a build with
// -buildvcs=false).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	extra := []string{"commit " + rev}
	if at != "" {
		extra = append(extra, at)
	}
	if modified {
		extra = append(extra, "modified")
	}
	return v + " (" + strings.Join(extra, ", ") + ")"
}

const description = `portfor keeps a registry of name→port assignments shared by every process
on this host. A name keeps its port across runs and reboots until released;
no two names ever share a port.

Examples:
   PORT=$(portfor my-service 8000)   # 8000 if free, else the nearest free port above
   portfor my-service                # the same port again, from any process
   portfor get my-service            # look up without assigning (exit 1 if unknown)
   portfor forward web api db        # many names: one port per line, one transaction
   portfor bind nginx 8080           # record exactly this port, or fail
   portfor move my-service 8001      # change a name's port
   portfor list --json               # every assignment, for scripts
   portfor release my-service        # free the port
   portfor forward list              # a name that is (or looks like) a command
   portfor wait localhost:5432 -t 60 # until something accepts connections there
   portfor wait my-service free      # until my-service's port can be bound again
   portfor check 8080                # prints free or occupied (exit 0 or 1)
   portfor find 8000-8100            # the first free port of a range
   portfor env web api               # WEB_PORT=3001 API_PORT=4000 (--write .env merges)
   PORT=$(portfor pick $$)           # a port leased to this script until it exits
   portfor pick --ports 8000-8100 $$ # the same, inside a range
   portfor serve &                   # a port server for portpicker's clients
   portfor doctor --fix              # check the registry and repair what is safe
   portfor url web/health            # http://localhost:PORT/health for web
   portfor import port-for           # bind every name of port-for's /etc/port-for.conf
   portfor run web -- npm start      # CMD with PORT and WEB_PORT set (--listen: socket bound)
   portfor --scope auto web          # this git worktree's own web (PORTFOR_SCOPE=auto)
   portfor prune                     # free the names of removed worktrees
   portfor who 8080                  # the pid, program and directory holding 8080
   portfor stop web --kill           # SIGTERM what holds web's port, SIGKILL if it stays

The registry is $PORTFOR_DB, else $XDG_STATE_HOME/portfor/registry.db
(~/.local/state/portfor/registry.db). Flags go anywhere before '--'.
Exit status: 0 ok, 1 failed, 2 usage.`

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "portfor",
		Usage:                "stable local ports for named services",
		UsageText:            "portfor [global options] NAME [PORT]\nportfor [global options] command [arguments...]",
		Description:          description,
		Version:              version(),
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      false,
		EnableBashCompletion: false,
		Suggest:              true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usagef("portfor", "%v", err)
		},
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "db",
				Usage:   "registry file (default: $XDG_STATE_HOME/portfor/registry.db)",
				EnvVars: []string{registry.EnvDB},
			},
			&cli.StringFlag{
				Name:    "lock-timeout",
				Usage:   "how long to wait for the registry lock (5, 0.5, 5s, 500ms)",
				Value:   registry.DefaultLockTimeout.String(),
				EnvVars: []string{"PORTFOR_LOCK_TIMEOUT"},
			},
			&cli.StringFlag{
				Name:    "scope",
				Usage:   "the `SCOPE` names belong to: a word, or auto for this git worktree's (none: names are global)",
				EnvVars: []string{"PORTFOR_SCOPE"},
			},
			// The old spelling, kept for one release: it read as the
			// timeout of `wait`, which has its own.
			&cli.StringFlag{Name: "timeout", Hidden: true},
		},
		Before: func(c *cli.Context) error {
			if c.String("timeout") != "" {
				// Noted whether or not the command opens the registry:
				// with `wait` it is most likely meant as wait's -t.
				if c.App.Metadata == nil {
					c.App.Metadata = map[string]any{}
				}
				c.App.Metadata[deprecated] = "the global --timeout is now --lock-timeout"
			}
			return nil
		},
		Action: func(c *cli.Context) error { return forward(c, "portfor") },
		Commands: []*cli.Command{
			forwardCommand(),
			getCommand(),
			bindCommand(),
			moveCommand(),
			releaseCommand(),
			listCommand(),
			waitCommand(),
			checkCommand(),
			findCommand(),
			envCommand(),
			pickCommand(),
			gcCommand(),
			serveCommand(),
			doctorCommand(),
			pruneCommand(),
			importCommand(),
			urlCommand(),
			completionCommand(),
			runCmd(),
			whoCommand(),
			stopCommand(),
		},
	}
	for _, cmd := range app.Commands {
		// No "help" subcommand: `portfor get help` looks up the name help.
		// `portfor help get` and `portfor get --help` show the help.
		cmd.HideHelpCommand = true
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return usagef("portfor "+c.Command.Name, "%v", err)
		}
	}
	return app
}

// openRegistry opens the registry named by --db / $PORTFOR_DB / the default,
// with the lock timeout from --lock-timeout / $PORTFOR_LOCK_TIMEOUT (or the
// deprecated global --timeout).
func openRegistry(c *cli.Context) (*registry.Registry, error) {
	root := rootContext(c)
	flag, value := "--lock-timeout", root.String("lock-timeout")
	if env, set := os.LookupEnv("PORTFOR_LOCK_TIMEOUT"); set && env == value {
		flag = "$PORTFOR_LOCK_TIMEOUT"
	}
	if old := root.String("timeout"); old != "" {
		flag, value = "--timeout", old
	}
	timeout, err := parseDuration(value)
	if err != nil {
		return nil, usagef("portfor", "%s: %v", flag, err)
	}
	path := root.String("db")
	if path == "" {
		if path, err = registry.DefaultPath(); err != nil {
			return nil, err
		}
	}
	if timeout == 0 {
		timeout = time.Nanosecond // "don't wait": one try, then give up
	}
	scope, dir, err := resolveScope(root.String("scope"))
	if err != nil {
		return nil, err
	}
	return registry.Open(path, registry.Options{LockTimeout: timeout, Scope: scope, ScopeDir: dir})
}

// resolveScope reads --scope: "auto" is the scope of the git worktree the
// command runs in ("" in the main worktree or outside git), and dir its
// administrative directory, which ends the scope when it is removed.
func resolveScope(s string) (scope, dir string, err error) {
	if s != "auto" {
		if s != "" {
			if err := registry.ValidateScope(s); err != nil {
				return "", "", usagef("portfor", "--scope: %v", err)
			}
		}
		return s, "", nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", "", fmt.Errorf("--scope auto: %w", err)
	}
	w, err := registry.FindWorktree(wd)
	return w.Scope, w.Admin, err
}

// scopeOnCommandLine reports whether --scope was typed (not only set in
// $PORTFOR_SCOPE): what frees a whole scope must be asked for in so many
// words.
func scopeOnCommandLine(c *cli.Context) bool {
	args, _ := c.App.Metadata[rawArgs].([]string)
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--scope" || strings.HasPrefix(a, "--scope=") || a == "-scope" || strings.HasPrefix(a, "-scope=") {
			return true
		}
	}
	return false
}

// rawArgs is the app.Metadata key of the command line as typed.
const rawArgs = "args"

// rootContext returns the context of the whole command line, where the
// global flags live: a command's own flag of the same name (wait's
// --timeout) must not shadow them.
func rootContext(c *cli.Context) *cli.Context {
	l := c.Lineage()
	for len(l) > 1 && l[len(l)-1].App == nil {
		l = l[:len(l)-1]
	}
	return l[len(l)-1]
}

// parseDuration reads a timeout: a Go duration ("5s", "500ms", "1m30s") or
// a bare number of seconds ("5", "0.5"), never negative.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || secs != secs || secs > float64(1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("invalid duration %q: want seconds (5, 0.5) or a duration (5s, 500ms)", s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return d, nil
}

// parsePort reads a PORT argument.
func parsePort(hint, s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || !isDigits(s) || p < 1 || p > portrange.MaxPort { // no sign: "+80" is a typo
		return 0, usagef(hint, "invalid port %q: want a number from 1 to %d", s, portrange.MaxPort)
	}
	return p, nil
}

// checkArgs checks the positional arguments against their names; the
// first min are required.
func checkArgs(c *cli.Context, hint string, min int, names ...string) error {
	n := c.NArg()
	switch {
	case n < min:
		return usagef(hint, "missing %s", names[n])
	case n > 0 && len(names) == 0:
		return usagef(hint, "unexpected argument %q: %s takes none", c.Args().First(), hint)
	case n > len(names):
		return usagef(hint, "unexpected argument %q after %s", c.Args().Get(len(names)), strings.Join(names, " "))
	}
	return nil
}
