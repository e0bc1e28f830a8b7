package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// The scripts are thin: each hands the words of the command line to
// `portfor completion __complete` and offers what it prints, so a command or
// flag added to the app is completed without touching them.
var (
	//go:embed completion/portfor.bash
	bashCompletion string
	//go:embed completion/portfor.zsh
	zshCompletion string
	//go:embed completion/portfor.fish
	fishCompletion string
)

var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}

// completeArg is the hidden first argument of `portfor completion` that the
// scripts call back with: `portfor completion __complete -- WORD... CURRENT`
// prints the candidates for CURRENT (possibly empty), one per line as
// "candidate<TAB>description", or the single line completeFiles. The "--"
// keeps the words as they are: the app moves global flags found after a
// command to its front, and --db must stay among the words.
const completeArg = "__complete"

// completeFiles asks the script to complete file names: no name, command
// or flag starts with ':'.
const completeFiles = ":files"

// completionListTimeout bounds reading the registry's names: a completion
// that waits on a busy registry is worse than one without names.
const completionListTimeout = 250 * time.Millisecond

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a script that completes portfor's commands, flags and names in SHELL",
		ArgsUsage: "bash|zsh|fish",
		Description: `The script completes commands, their flags and the names in the registry
(the one --db names on the line being completed, else $PORTFOR_DB, else the
default). It asks portfor for the candidates, so it stays right across upgrades.

   source <(portfor completion bash)        # in ~/.bashrc
   source <(portfor completion zsh)         # in ~/.zshrc, after compinit
   portfor completion fish | source         # in ~/.config/fish/config.fish`,
		// The words being completed may hold anything, flags included.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			const hint = "portfor completion"
			args := c.Args().Slice()
			if len(args) > 0 && args[0] == completeArg {
				words := args[1:]
				if len(words) > 0 && words[0] == "--" {
					words = words[1:]
				}
				for _, line := range complete(c, words) {
					fmt.Fprintln(c.App.Writer, line)
				}
				return nil // never an error: the shell would print it mid-line
			}
			if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
				cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
				return nil
			}
			if err := checkArgs(c, hint, 1, "SHELL"); err != nil {
				return err
			}
			script, ok := completionScripts[args[0]]
			if !ok {
				return usagef(hint, "unknown shell %q: want bash, zsh or fish", args[0])
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// Which arguments of a command are registered names, by command: every
// one (get web api), or only the first (move NAME PORT). wait, whose every
// TARGET may be a name, is completed on its own.
var (
	namesAll   = map[string]bool{"forward": true, "get": true, "release": true, "env": true}
	nameFirst  = map[string]bool{"move": true, "check": true, "url": true, "stop": true}
	notGlobals = []string{"help", "version"} // offered at the top only
)

// valueFlag is a flag as completion sees it.
type valueFlag struct {
	names  []string
	usage  string
	value  bool // takes a value
	path   bool // the value is a file name
	hidden bool // read, never offered
}

// ownFlags are the flags of commands that parse their own (SkipFlagParsing),
// which the app does not know.
var ownFlags = map[string][]valueFlag{
	"wait": {{names: []string{"timeout", "t"}, usage: "how long to wait (default 30s)", value: true}},
}

// complete returns the candidates for the last of words, the words after
// "portfor" on the command line being completed, in order. Flags go
// anywhere before "--", global ones after the command too; a command's own
// flag shadows a global one of the same name (wait's --timeout).
func complete(c *cli.Context, words []string) []string {
	words = joinEquals(words)
	if len(words) == 0 {
		words = []string{""}
	}
	args, cur := words[:len(words)-1], words[len(words)-1]

	var (
		global     = flagsOf(c.App.Flags, nil)
		cmd        *cli.Command // the command, once its name is seen
		own        []valueFlag  // its flags
		shorthand  bool         // `portfor NAME [PORT]`: NAME is seen
		rest       []string     // the arguments after the command
		flagsEnded bool         // by "--"
		db         string       // --db on the line
		scope      string       // --scope on the line
		scopeSet   bool
	)
	lookup := func(name string) (f *valueFlag, isGlobal bool) {
		if f = lookupFlag(own, name); f != nil {
			return f, false
		}
		return lookupFlag(global, name), true
	}
	for i := 0; i < len(args); i++ {
		w := args[i]
		switch {
		case !flagsEnded && w == "--":
			flagsEnded = true
		case !flagsEnded && len(w) > 1 && w[0] == '-':
			name, val, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f, isGlobal := lookup(name)
			if f != nil && f.value && !hasVal {
				if i+1 == len(args) {
					return valueCandidates(f) // cur is the flag's value
				}
				i++
				val = args[i]
			}
			if isGlobal && name == "db" {
				db = val
			}
			if isGlobal && name == "scope" {
				scope, scopeSet = val, true
			}
		case cmd == nil && !shorthand:
			if cmd = commandNamed(c.App, w); cmd != nil {
				own = flagsOf(cmd.Flags, ownFlags[cmd.Name])
			} else {
				shorthand = true
			}
		default:
			rest = append(rest, w)
		}
	}

	pos := len(rest)
	names := func() []string {
		var out []string
		if !scopeSet {
			scope = c.String("scope") // $PORTFOR_SCOPE
		}
		for _, n := range nameCandidates(c, db, scope, cur) {
			if id, _, _ := strings.Cut(n, "\t"); !slices.Contains(rest, id) {
				out = append(out, n) // once is enough: get web api
			}
		}
		return out
	}
	switch {
	case !flagsEnded && strings.HasPrefix(cur, "-"):
		if name, _, ok := strings.Cut(strings.TrimLeft(cur, "-"), "="); ok {
			if f, _ := lookup(name); f != nil && f.value {
				return valueCandidates(f)
			}
			return nil
		}
		if cmd == nil && !shorthand {
			return flagCandidates(global, cur)
		}
		return flagCandidates(append(own, withoutNames(global, notGlobals)...), cur)
	case shorthand:
		return nil // PORT
	case cmd == nil:
		return append(commandCandidates(c.App, cur), names()...)
	case cmd.Name == "help":
		if pos == 0 {
			return commandCandidates(c.App, cur)
		}
	case cmd.Name == "completion":
		if pos == 0 {
			return prefixed([]string{"bash", "fish", "zsh"}, cur)
		}
	case cmd.Name == "wait":
		if flagsEnded {
			return nil // CMD ARGS... after "--"
		}
		out := names()
		if pos > 0 {
			out = append(out, prefixed([]string{
				"occupied\tuntil something accepts connections (the default)",
				"free\tuntil the ports can be bound again",
			}, cur)...)
		}
		return out
	case cmd.Name == "run":
		if flagsEnded {
			return nil // CMD ARGS... after "--"
		}
		return names()
	case namesAll[cmd.Name], nameFirst[cmd.Name] && pos == 0:
		return names()
	}
	return nil
}

// withoutNames returns flags but those with one of names.
func withoutNames(flags []valueFlag, names []string) []valueFlag {
	var out []valueFlag
	for _, f := range flags {
		if !slices.ContainsFunc(f.names, func(n string) bool { return slices.Contains(names, n) }) {
			out = append(out, f)
		}
	}
	return out
}

// joinEquals undoes bash's splitting of "--db=PATH" into "--db", "=", "PATH"
// (COMP_WORDBREAKS holds '=' unless bash-completion is loaded).
func joinEquals(words []string) []string {
	out := make([]string, 0, len(words))
	for i := 0; i < len(words); i++ {
		if n := len(out); words[i] == "=" && n > 0 && strings.HasPrefix(out[n-1], "-") && !strings.Contains(out[n-1], "=") {
			out[n-1] += "="
			if i+1 < len(words) {
				i++
				out[n-1] += words[i]
			}
			continue
		}
		out = append(out, words[i])
	}
	return out
}

// flagsOf describes flags, then own, then --help.
func flagsOf(flags []cli.Flag, own []valueFlag) []valueFlag {
	var out []valueFlag
	for _, f := range flags {
		vf := valueFlag{names: f.Names()}
		if v, ok := f.(cli.VisibleFlag); ok {
			vf.hidden = !v.IsVisible()
		}
		if d, ok := f.(cli.DocGenerationFlag); ok {
			vf.usage, vf.value = d.GetUsage(), d.TakesValue()
		}
		_, vf.path = f.(*cli.PathFlag)
		vf.path = vf.path || slices.Contains(vf.names, "db")
		out = append(out, vf)
	}
	out = append(out, own...)
	if lookupFlag(out, "help") == nil {
		out = append(out, valueFlag{names: []string{"help", "h"}, usage: "show help"})
	}
	return out
}

func lookupFlag(flags []valueFlag, name string) *valueFlag {
	for i := range flags {
		if slices.Contains(flags[i].names, name) {
			return &flags[i]
		}
	}
	return nil
}

// valueCandidates completes the value of f: file names for a path.
func valueCandidates(f *valueFlag) []string {
	if f.path {
		return []string{completeFiles}
	}
	return nil
}

// flagCandidates offers each flag as --name, and -n for a one-letter name;
// of two flags of one name, the first.
func flagCandidates(flags []valueFlag, cur string) []string {
	var all []string
	seen := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.names {
			if f.hidden || seen[n] {
				continue // hidden, or shadowed by the command's own
			}
			seen[n] = true
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			all = append(all, dash+n+"\t"+f.usage)
		}
	}
	return prefixed(all, cur)
}

// commandNamed returns the command named or aliased w, hidden ones included
// (they run all the same), or nil.
func commandNamed(app *cli.App, w string) *cli.Command {
	for _, cmd := range app.Commands {
		if cmd.HasName(w) {
			return cmd
		}
	}
	return nil
}

// commandCandidates offers the visible commands starting with cur, and an
// alias when cur rules its command out (unbind, not release).
func commandCandidates(app *cli.App, cur string) []string {
	var out []string
	for _, cmd := range app.Commands {
		if cmd.Hidden {
			continue
		}
		if strings.HasPrefix(cmd.Name, cur) {
			out = append(out, cmd.Name+"\t"+cmd.Usage)
			continue
		}
		for _, a := range cmd.Aliases {
			if cur != "" && strings.HasPrefix(a, cur) {
				out = append(out, a+"\t"+cmd.Usage)
			}
		}
	}
	return clean(out)
}

// nameCandidates offers the registered names of scope (--scope's value)
// starting with cur, from the registry at db, else $PORTFOR_DB, else the
// default. It only reads: no
// registry, lock file or directory is made when missing, and a registry
// locked for longer than completionListTimeout offers nothing.
func nameCandidates(c *cli.Context, db, scope, cur string) []string {
	scope, _, err := resolveScope(scope)
	if err != nil {
		return nil
	}
	path := expandHome(db)
	if path == "" {
		path = c.String("db") // $PORTFOR_DB
	}
	if path == "" {
		var err error
		if path, err = registry.DefaultPath(); err != nil {
			return nil
		}
	}
	reg, err := registry.Open(path, registry.Options{LockTimeout: completionListTimeout})
	if err != nil {
		return nil
	}
	for _, p := range []string{reg.Path(), reg.LockPath()} {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return nil // taking the lock would create its file
		}
	}
	ctx, cancel := context.WithTimeout(c.Context, completionListTimeout)
	defer cancel()
	list, err := reg.List(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range list {
		// Only names one can type: one written around the registry
		// package could hold a newline (a forged candidate) or escapes.
		if a.Kind == registry.Stable && a.Scope == scope && registry.ValidateID(a.ID) == nil && strings.HasPrefix(a.ID, cur) {
			out = append(out, a.ID+"\tport "+strconv.Itoa(a.Port))
		}
	}
	return out
}

// expandHome reads a leading ~/ as the shell would have.
func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

// prefixed keeps the candidates ("candidate\tdescription") starting with cur.
func prefixed(cands []string, cur string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			out = append(out, c)
		}
	}
	return clean(out)
}

// clean folds each description onto its line.
func clean(cands []string) []string {
	for i, c := range cands {
		if name, desc, ok := strings.Cut(c, "\t"); ok {
			cands[i] = name + "\t" + strings.Join(strings.Fields(desc), " ")
		}
	}
	return cands
}
