package main

import (
	"context"
	"fmt"
	"io"
	"os"
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
	"env", "run", "pick", "gc", "serve", "doctor", "import", "url", "completion", "prune", "help", "h",
}

// quickHit answers `portfor [--db PATH] [--lock-timeout D] [--scope S] NAME` when NAME
// is registered, and reports whether it did, setting *code if the answer
// could not be written. It takes the lock once, without waiting: a busy
// registry is left to the full path, which waits as long as it is told.
func quickHit(ctx context.Context, args []string, stdout, stderr io.Writer, code *int) bool {
	var name, db, scope string
	seen, dbSet, timeoutSet, scopeSet := false, false, false, false
	for i := 1; i < len(args); i++ {
		a := args[i]
		flag, value, inline := strings.Cut(a, "=")
		switch {
		case flag == "--db" || flag == "--lock-timeout" || flag == "--scope":
			if !inline {
				if i+1 == len(args) {
					return false
				}
				i++
				value = args[i]
			}
			if flag == "--db" {
				db, dbSet = value, true
			} else if flag == "--scope" {
				scope, scopeSet = value, true
			} else {
				// Only checked: the lookup does not wait at all.
				if _, err := parseDuration(value); err != nil {
					return false
				}
				timeoutSet = true
			}
		case strings.HasPrefix(a, "-") || seen:
			return false // another flag, "--", or a second argument
		default:
			name, seen = a, true
		}
	}
	// An empty NAME, a command, and NAME=PORT (the shorthand reads a name
	// holding '=' so) are the full path's.
	if name == "" || isCommandName(name) || strings.Contains(name, "=") {
		return false
	}
	if !timeoutSet {
		if v, set := os.LookupEnv("PORTFOR_LOCK_TIMEOUT"); set {
			if _, err := parseDuration(v); err != nil {
				return false // the full path says what is wrong with it, empty too
			}
		}
	}
	if !dbSet {
		db = os.Getenv(registry.EnvDB)
	}
	if db == "" {
		var err error
		if db, err = registry.DefaultPath(); err != nil {
			return false
		}
	}
	if !scopeSet {
		scope = os.Getenv("PORTFOR_SCOPE")
	}
	scope, _, err := resolveScope(scope) // only a lookup: nothing records the scope's directory
	if err != nil {
		return false
	}
	reg, err := registry.Open(db, registry.Options{LockTimeout: time.Nanosecond, Scope: scope})
	if err != nil {
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
