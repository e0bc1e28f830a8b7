package main

// What a hostile review of the command line found, each through the real
// CLI: names another user chose, words that are names and help topics at
// once, flags after arguments that took over the command, ports mistyped
// into names.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A name another member of a shared registry chose must reach a bash user's
// command line quoted: unquoted, completing it and pressing Enter would run
// the command substitution in it as the user who completed. zsh's compadd
// and fish quote what they insert; the bash script quotes with printf %q.
func TestBashCompletionQuotesHostileNames(t *testing.T) {
	db := newDB(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	hostile := "web-$(touch${IFS}" + marker + ")"
	o := portfor(t, db, "forward", "--", hostile)
	require.Equal(t, 0, o.code, "a valid name: %s", o.stderr)

	env, script := shellEnv(t, "bash", db)
	// What the user's shell does with the completed word once Enter is
	// pressed: it evaluates it as part of a command line.
	const harness = `
COMP_WORDS=(portfor get web-); COMP_CWORD=2; COMP_LINE='portfor get web-'; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_portfor
[[ ${#COMPREPLY[@]} == 1 ]] || { echo "want one candidate, got ${#COMPREPLY[@]}"; exit 0; }
eval "printf '%s\n' ${COMPREPLY[0]}"
`
	out := runShell(t, env, "bash", "--norc", "--noprofile", "-c", "source '"+script+"'\n"+harness)
	_, err := os.Stat(marker)
	assert.ErrorIs(t, err, os.ErrNotExist, "completing a registered name ran the command in it")
	assert.Equal(t, hostile, strings.TrimSuffix(out, "\n"), "the completed word, as the shell reads it, is the name")
}

// "help" and "h" are valid names (portfor forward registers them), so as
// the first argument of a command they are names, not urfave/cli's help
// subcommand: PORT=$(portfor get help) must not be a page of text.
func TestHelpAndHAreNamesAfterTheCommand(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "forward", "x", "help", "h")
	require.Equal(t, 0, o.code, o.stderr)
	want := ports(t, o.stdout)
	require.Len(t, want, 3, "help and h are registered")

	for _, args := range [][]string{{"get", "help"}, {"get", "--", "help"}, {"get", "h"}, {"forward", "help"}} {
		o = portfor(t, db, args...)
		assert.Equal(t, 0, o.code, "%q: %s", args, o.stderr)
		assert.NotContains(t, o.stdout, "NAME:", "%q printed help instead of the port", args)
	}
	o = portfor(t, db, "move", "help", "9300")
	assert.NotContains(t, o.stderr, "No help topic", "move help PORT moves the name help")

	o = portfor(t, db, "release", "help")
	assert.NotContains(t, o.stdout, "NAME:", "release help printed help")
	o = portfor(t, db, "get", "x", "help")
	assert.Equal(t, 1, o.code, "after `release help`, help is unknown: %s", o.stdout)
}

// Flags go anywhere before "--", but -v after the command is no request for
// the version (it would print it and do nothing, with exit 0), and -h after
// arguments is help on the command, not on a topic named after them.
func TestVersionAndHelpFlagsAfterArguments(t *testing.T) {
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "web").code)

	o := portfor(t, db, "release", "web", "-v")
	released := portfor(t, db, "get", "web").code == 1
	assert.True(t, o.code != 0 || released, "`release web -v` exited 0 (stdout %q) and released nothing", o.stdout)

	o = portfor(t, db, "forward", "newsvc", "-v")
	assert.False(t, o.code == 0 && strings.Contains(o.stdout, "version"),
		"PORT=$(portfor forward newsvc -v) set PORT to %q with exit 0", o.stdout)

	o = portfor(t, db, "get", "web", "-h")
	assert.Equal(t, 0, o.code, "`get web -h` (flags go anywhere): %s", o.stderr)
	assert.Contains(t, o.stdout, "portfor get - ")
}

// A port mistyped after '=', a bare port in a list of names, or a port given
// to the shorthand alone is a usage error, never registered as a name.
func TestMistypedPortsAreNotNames(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "forward", "web=80o0")
	assert.Equal(t, exitUsage, o.code, "web=80o0 registered the name %q", "web=80o0")

	assert.Equal(t, "portfor: invalid port \"80o0\" after web=: want a number from 1 to 65535 (try 'portfor forward --help')\n", o.stderr)
	o = portfor(t, db, "forward", "j=+9401")
	assert.Equal(t, exitUsage, o.code, o.stdout)

	o = portfor(t, db, "forward", "web", "8100", "api", "8200")
	assert.Equal(t, exitUsage, o.code, "NAME PORT NAME PORT printed %q", o.stdout)
	assert.Equal(t, "portfor: 8100 is a port without a name: write NAME=8100 (try 'portfor forward --help')\n", o.stderr)
	assert.Equal(t, 1, portfor(t, db, "get", "8100").code, "8100 is registered as a name")

	o = portfor(t, db, "8500")
	assert.Equal(t, outcome{"", "portfor: 8500 is a port, not a name: 'portfor NAME 8500' gives it to NAME ('portfor forward 8500' registers the name 8500) (try 'portfor --help')\n", exitUsage}, o)
	require.Equal(t, 0, portfor(t, db, "forward", "8500").code, "the explicit form takes any valid name")
	assert.Equal(t, 0, portfor(t, db, "8500").code, "and then the shorthand finds it")

	o = portfor(t, db, "forward", "b=19000", "b=19001")
	assert.Equal(t, outcome{"", "portfor: b is asked for twice, with 19000 and 19001 (try 'portfor forward --help')\n", exitUsage}, o)
	assert.Equal(t, 0, portfor(t, db, "forward", "c=19002", "c").code, "the same name twice, one port: fine")
}

// The typo guard ignores case, and "version" is the flag --version.
func TestTypoGuardCaseAndVersion(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "LIST")
	assert.Equal(t, outcome{"", "portfor: \"LIST\" is a command; to register a name like this, use 'portfor forward LIST' (try 'portfor --help')\n", exitUsage}, o)
	o = portfor(t, db, "version")
	assert.Equal(t, outcome{"", "portfor: unknown command \"version\": did you mean '--version'? to register a name like this, use 'portfor forward version' (try 'portfor --help')\n", exitUsage}, o)
}

// Error messages stay one short line whatever was pasted.
func TestLongNamesAreCutInErrors(t *testing.T) {
	o := portfor(t, newDB(t), "forward", "--", strings.Repeat("x", 100000))
	assert.Equal(t, exitUsage, o.code)
	assert.Less(t, len(o.stderr), 300, o.stderr)
	assert.Contains(t, o.stderr, "(100000 bytes): longer than 200 bytes")
}

// The deprecated global --timeout is noted by every command, including those
// that never open the registry: `portfor --timeout 1 wait PORT` is the very
// confusion the rename is for.
func TestOldTimeoutNotedForWait(t *testing.T) {
	db := newDB(t)
	port := freePort(t)
	o := portfor(t, db, "--timeout", "5", "wait", "127.0.0.1:"+strconv.Itoa(port), "-t", "0.2")
	assert.Equal(t, 1, o.code, o.stderr)
	assert.Contains(t, o.stderr, "--lock-timeout", "no deprecation note for the global --timeout")
}

// A port held by a lease is called that, not "assigned to lease:PORT".
func TestMoveOntoALeasedPort(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "pick", strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, o.code, o.stderr)
	leased := strings.TrimSpace(o.stdout)
	require.Equal(t, 0, portfor(t, db, "forward", "web").code)
	o = portfor(t, db, "move", "web", leased)
	assert.Equal(t, outcome{"", "portfor: move \"web\": port " + leased + ": leased (held until its owner process exits)\n", 1}, o)
}
