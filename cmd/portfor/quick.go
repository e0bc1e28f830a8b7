package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portfor/portfor/registry"
)

// The most frequent call, `portfor NAME` for a name that has its port, is
// answered before the command line is built: urfave/cli's app (every
// command, flag and help text) costs a start-up's worth of allocations
// and page faults that a lookup does not need (see docs/benchmarks.md).
// Anything else, or anything this path is unsure of, falls through to
// the full command line, which then does the whole work as if this path
// did not exist: this path writes nothing but the port, and only once it
// has it.

// commandNames are the names and aliases of the app's commands, and its
// help command's: a word that is one of them is never a NAME here. A test
// keeps the list equal to newApp's.
var commandNames = [...]string{
	"forward", "get", "bind", "move", "release", "unbind", "list", "wait", "check", "find",
	"env", "run", "pick", "gc", "serve", "doctor", "import", "url", "completion", "prune", "who", "stop", "help", "h",
}

// quickHit answers `portfor [--db PATH] [--lock-timeout D] [--scope S]
// NAME` (the flags before or after NAME) when NAME is registered, and
// reports whether it did, setting *code if the answer could not be
// written. It takes the lock once, without waiting: a busy registry is
// left to the full path, which waits as long as it is told.
func quickHit(ctx context.Context, args []string, stdout, stderr io.Writer, code *int) bool {
	var g quickOpts
	name, seen := "", false
	for i := 1; i < len(args); i++ {
		next, isFlag, ok := g.flag(args, i)
		switch {
		case !ok:
			return false
		case isFlag:
			i = next
		case strings.HasPrefix(args[i], "-") || seen:
			return false // another flag, "--", or a second argument
		default:
			name, seen = args[i], true
		}
	}
	// An empty NAME, a command, and NAME=PORT (the shorthand reads a name
	// holding '=' so) are the full path's.
	if name == "" || isCommandName(name) || strings.Contains(name, "=") {
		return false
	}
	reg, ok := g.open()
	if !ok {
		return false
	}
	a, err := reg.Lookup(ctx, name)
	if err != nil || a.Kind != registry.Stable {
		return false
	}
	if _, err := io.WriteString(stdout, strconv.Itoa(a.Port)+"\n"); err != nil {
		// Not tried again by the full path: part of it may be out.
		fmt.Fprintf(stderr, "portfor: write the port: %v\n", err)
		*code = exitFailed
		return true
	}
	return true
}

func isCommandName(s string) bool {
	for _, c := range commandNames {
		if s == c {
			return true
		}
	}
	return false
}

// quickRun answers `portfor [--db P] [--lock-timeout D] [--scope S] run
// NAME... -- CMD ARGS...` when every NAME is registered: it looks them up
// (the lock taken once, without waiting) and becomes CMD as `run` does,
// without building the command line, so that CMD starts within a hit's
// time and an exec of portfor. Any flag of run's own (--listen), NAME=PORT,
// an unknown name, a busy lock, a CMD that cannot start: the full path's,
// which does all of it as if this path did not exist. It reports whether
// it answered; *code is CMD's status where CMD ran as a child (an
// in-process run), or the failure's.
func quickRun(ctx context.Context, args []string, stdout, stderr io.Writer, code *int) bool {
	g, i, ok := quickGlobals(args)
	if !ok || i >= len(args) || args[i] != "run" {
		return false
	}
	var names []string
	i++
	for ; i < len(args) && args[i] != "--"; i++ {
		a := args[i]
		if a == "" || strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
			return false
		}
		names = append(names, a)
	}
	if len(names) == 0 || i+1 >= len(args) {
		return false
	}
	command := args[i+1:]
	vars := map[string]string{} // variable → name
	for _, n := range names {
		v := EnvName(n)
		if other, taken := vars[v]; taken && other != n {
			return false
		}
		vars[v] = n
	}
	known := func(name string) (int, bool) { return 0, slices.Contains(names, name) }
	if _, err := expandPorts(command[1:], 0, known); err != nil {
		return false
	}
	path, err := exec.LookPath(command[0])
	if err != nil {
		return false
	}
	reg, ok := g.open()
	if !ok {
		return false
	}
	found, errs := reg.LookupEach(ctx, names)
	ports := map[string]int{}
	for k, a := range found {
		if errs[k] != nil || a.Kind != registry.Stable {
			return false
		}
		ports[names[k]] = a.Port
	}
	byName := func(name string) (int, bool) { p, ok := ports[name]; return p, ok }
	rest, err := expandPorts(command[1:], ports[names[0]], byName)
	if err != nil {
		return false
	}
	set := map[string]string{"PORT": strconv.Itoa(ports[names[0]])}
	for v, n := range vars {
		set[v] = strconv.Itoa(ports[n])
	}
	err = execWith(stdout, stderr, path, append([]string{command[0]}, rest...), set, nil)
	*code = report(ctx, err, stderr)
	return true
}

// quickWho answers `portfor [globals] who [--json] PORT|NAME` (--json
// before or after the argument) without building the command line: who
// is asked when something is in the way, and its answer should take no
// longer than ss's. A NAME that is not registered, a flag of who's it
// does not know, a system where sockets cannot be looked up: the full
// path's, which does all of it as if this path did not exist. Unlike the
// other quick paths it waits for a busy lock as long as the full path
// would: who's names come from the registry, and a one-try lock would
// leave them out where the full path would wait and print them.
func quickWho(ctx context.Context, args []string, stdout, stderr io.Writer, code *int) bool {
	g, i, ok := quickGlobals(args)
	if !ok || i >= len(args) || args[i] != "who" {
		return false
	}
	arg, asJSON := "", false
	for _, a := range args[i+1:] {
		switch {
		case a == "--json":
			asJSON = true
		case a == "" || strings.HasPrefix(a, "-") || arg != "":
			return false
		default:
			arg = a
		}
	}
	if arg == "" {
		return false
	}
	reg, ok := g.openWaiting()
	if !ok {
		return false
	}
	var port int
	if isDigits(arg) {
		p, err := strconv.Atoi(arg)
		if err != nil || p < 1 || p > 65535 || arg[0] == '0' {
			return false
		}
		port = p
	} else {
		a, err := reg.Lookup(ctx, arg)
		if err != nil {
			return false
		}
		port = a.Port
	}
	holders, err := reg.Who(ctx, port)
	if err != nil {
		return false
	}
	*code = report(ctx, reportWho(stdout, stderr, holders, port, asJSON), stderr)
	return true
}

// quickGlobals reads the global flags at the front of args (see
// quickOpts.flag) and returns them with the index of the first other
// argument; ok is false for a value the full path must judge.
func quickGlobals(args []string) (g quickOpts, next int, ok bool) {
	i := 1
	for ; i < len(args); i++ {
		n, isFlag, ok := g.flag(args, i)
		if !ok {
			return g, 0, false
		}
		if !isFlag {
			break
		}
		i = n
	}
	return g, i, true
}

// flag reads args[i] if it is a global flag the quick paths know (--db,
// --lock-timeout, --scope, as "--flag value" or "--flag=value") and
// returns the index of its last word; ok is false for a flag without its
// value or a value the full path must judge.
func (g *quickOpts) flag(args []string, i int) (last int, isFlag, ok bool) {
	flag, value, inline := strings.Cut(args[i], "=")
	if flag != "--db" && flag != "--lock-timeout" && flag != "--scope" {
		return i, false, true
	}
	if !inline {
		if i+1 == len(args) {
			return i, true, false
		}
		i++
		value = args[i]
	}
	switch flag {
	case "--db":
		g.db, g.dbSet = value, true
	case "--scope":
		g.scope, g.scopeSet = value, true
	default:
		d, err := parseDuration(value)
		if err != nil {
			return i, true, false
		}
		g.timeout, g.timeoutSet = d, true
	}
	return i, true, true
}

// quickOpts are the global flags a quick path read.
type quickOpts struct {
	db, scope                   string
	timeout                     time.Duration // --lock-timeout, when timeoutSet
	dbSet, scopeSet, timeoutSet bool
}

// open opens the registry those flags (and their environment variables)
// name, with a lock timeout of one try; ok is false for anything the full
// path must judge.
func (g quickOpts) open() (*registry.Registry, bool) {
	return g.openWith(time.Nanosecond)
}

// openWaiting is open with the lock timeout the full path would use:
// --lock-timeout, $PORTFOR_LOCK_TIMEOUT, or the default.
func (g quickOpts) openWaiting() (*registry.Registry, bool) {
	return g.openWith(0)
}

// openWith opens the registry with the lock timeout wait, or when wait is
// 0 the one the flags and environment give.
func (g quickOpts) openWith(wait time.Duration) (*registry.Registry, bool) {
	timeout := g.timeout
	if !g.timeoutSet {
		timeout = registry.DefaultLockTimeout
		if v, set := os.LookupEnv("PORTFOR_LOCK_TIMEOUT"); set {
			d, err := parseDuration(v)
			if err != nil {
				return nil, false
			}
			timeout = d
		}
	}
	if timeout == 0 {
		timeout = time.Nanosecond // "don't wait", as openRegistry reads it
	}
	if wait != 0 {
		timeout = wait
	}
	db := g.db
	if !g.dbSet {
		db = os.Getenv(registry.EnvDB)
	}
	if db == "" {
		var err error
		if db, err = registry.DefaultPath(); err != nil {
			return nil, false
		}
	}
	scope := g.scope
	if !g.scopeSet {
		scope = os.Getenv("PORTFOR_SCOPE")
	}
	scope, _, err := resolveScope(scope)
	if err != nil {
		return nil, false
	}
	reg, err := registry.Open(db, registry.Options{LockTimeout: timeout, Scope: scope})
	return reg, err == nil
}
