package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Flags go anywhere before "--", as in `portfor find 8000-8100 --any` and
// `portfor pick $$ -n 3`. urfave/cli stops reading flags at the first
// argument, so interspersed reorders the command line before it parses:
// a command's flags move in front of its arguments, and global flags given
// after the command move in front of the command. Nothing after "--"
// moves, and a command that parses its own arguments (wait) keeps them in
// place but for the global flags.

// flagInfo is what reordering needs to know of a flag.
type flagInfo struct {
	takesValue bool
}

// flagTable maps each name of flags ("db", "n") to its info.
func flagTable(flags []cli.Flag) map[string]flagInfo {
	m := map[string]flagInfo{}
	for _, f := range flags {
		v := false
		if d, ok := f.(cli.DocGenerationFlag); ok {
			v = d.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = flagInfo{takesValue: v}
		}
	}
	return m
}

// flagName returns the name of a flag argument ("--any" → "any",
// "-n=3" → "n") and whether it carries its value after '='; ok is false
// for an argument that is not a flag ("-" and "--" are not).
func flagName(arg string) (name string, inline, ok bool) {
	if len(arg) < 2 || arg[0] != '-' || arg == "--" {
		return "", false, false
	}
	name = strings.TrimPrefix(arg[1:], "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], true, true
	}
	return name, false, true
}

// helpFlags are the flags urfave/cli adds to the app and every command.
var helpFlags = map[string]flagInfo{"h": {}, "help": {}}

func isHelp(name string) bool {
	_, ok := helpFlags[name]
	return ok
}

// interspersed returns args (args[0] is the program) with flags moved
// before the arguments, as described above.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagTable(app.Flags)
	leading := map[string]flagInfo{"v": {}, "version": {}} // only before the command
	for k, v := range helpFlags {
		leading[k] = v
	}
	// Leading global flags stay where they are.
	i := 1
	for i < len(args) {
		name, inline, ok := flagName(args[i])
		if !ok {
			break
		}
		i++
		f, known := global[name]
		if !known {
			f = leading[name]
		}
		if f.takesValue && !inline && i < len(args) {
			i++
		}
	}
	if i == len(args) || args[i] == "--" {
		return args
	}
	head := append([]string{}, args[:i]...)
	cmd := app.Command(args[i])
	var own map[string]flagInfo
	rest := args[i:]
	if cmd != nil {
		own = flagTable(cmd.Flags)
		for k, v := range helpFlags {
			own[k] = v
		}
		rest = args[i+1:]
	} else {
		// The shorthand `portfor NAME [PORT]`: its flags are the app's.
		own = map[string]flagInfo{}
		for k, v := range global {
			own[k] = v
		}
		for k, v := range helpFlags {
			own[k] = v
		}
	}
	var globals, flags, positional []string
	j := 0
	for ; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			break
		}
		name, inline, ok := flagName(a)
		if _, v := leading[name]; ok && cmd == nil && v && !isHelp(name) {
			ok = false // -v after NAME is no request for the version
		}
		if !ok {
			positional = append(positional, a)
			continue
		}
		f, isOwn := own[name]
		g, isGlobal := global[name]
		dst := &flags
		switch {
		case cmd != nil && cmd.SkipFlagParsing && (isOwn || !isGlobal || name == "timeout"):
			// The command reads its own flags (wait's --timeout among
			// them): leave them in place.
			positional = append(positional, a)
			continue
		case cmd != nil && !isOwn && isGlobal:
			dst, f = &globals, g
		}
		if isHelp(name) && (isOwn || cmd == nil) {
			// Help on the command, whatever else was given: its
			// arguments would be read as help topics.
			out := append(head, globals...)
			if cmd != nil {
				out = append(out, args[i])
			}
			return append(out, a)
		}
		if f.takesValue && !inline && j+1 == len(rest) {
			// A flag missing its value: where the command's parser
			// will say so ("flag needs an argument"), rather than
			// take an argument or the command's name for its value.
			if dst == &globals || cmd == nil {
				return append(head, a)
			}
			return append(head, args[i], a)
		}
		*dst = append(*dst, a)
		if f.takesValue && !inline {
			j++
			*dst = append(*dst, rest[j])
		}
	}
	out := append(head, globals...)
	if cmd != nil {
		out = append(out, args[i])
	}
	out = append(out, flags...)
	if cmd != nil && cmd.SkipFlagParsing {
		out = append(out, positional...)
		return append(out, rest[j:]...)
	}
	if len(positional) > 0 || j < len(rest) {
		// "--" ends the flags, so that a positional argument is never read
		// as one, wherever it came from.
		out = append(out, "--")
		out = append(out, positional...)
		if j < len(rest) {
			out = append(out, rest[j+1:]...)
		}
	}
	return out
}

// Typos of commands must not become names: `portfor lsit` would register
// "lsit" for good. The shorthand refuses a new name that is a command or
// one slip from one; `portfor forward NAME` takes any valid name.

// nearCommand returns the command (or alias) that name is a typo of, or "".
// Case does not count: "LIST" is list with caps lock on. "version" counts
// as a command: it is the flag --version.
func nearCommand(app *cli.App, name string) string {
	name = strings.ToLower(name)
	if name == "version" {
		return "--version"
	}
	best, bestD := "", 1<<30
	for _, c := range app.Commands {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			if n == name {
				return n
			}
			if len(n) < 3 || len(name) < 2 {
				continue // one slip from "h" or "gc" is half the names there are
			}
			limit := 1
			if len(n) >= 6 {
				limit = 2
			}
			if abs(len(name)-len(n)) > limit {
				continue // the distance is at least the difference in length
			}
			if d := editDistance(name, n); d <= limit && d < bestD {
				best, bestD = n, d
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // no command is that long
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// typoError is the shorthand's refusal of a name that looks like a command.
func typoError(name, cmd string) error {
	if strings.EqualFold(name, cmd) {
		return usagef("portfor", "%q is a command; to register a name like this, use 'portfor forward %s'", name, name)
	}
	return &usageError{
		msg:  fmt.Sprintf("unknown command %q: did you mean '%s'? to register a name like this, use 'portfor forward %s'", name, cmd, name),
		hint: "portfor",
	}
}

// clip makes text a user or another process chose fit one short line of an
// error message: escaped as printable does, and cut after 64 bytes.
func clip(s string) string {
	s = printable(s)
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
