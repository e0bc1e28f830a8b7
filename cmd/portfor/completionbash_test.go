package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The bash script must read the helper's answer line by line, never as an
// unquoted $out, which is also a glob: under the user's `shopt -s nullglob`
// a name holding *, ? or [ vanished from the candidates; under failglob
// bash printed "no match: NAME<TAB>port N" in the middle of the line.
func TestBashCompletionNamesAreNotGlobbed(t *testing.T) {
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "forward", "--", "s*t", "w[1]", "q?").code)
	env, script := shellEnv(t, "bash", db)
	const harness = `
COMP_WORDS=(portfor get ''); COMP_CWORD=2; COMP_LINE='portfor get '; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_portfor 2>&1
printf '%s\n' "${COMPREPLY[@]}"
`
	for _, opt := range []string{"nullglob", "failglob"} {
		out := runShell(t, env, "bash", "--norc", "--noprofile", "-c", "shopt -s "+opt+"\nsource '"+script+"'\n"+harness)
		assert.Equal(t, []string{`q\?`, `s\*t`, `w\[1\]`}, shellLines(out), "with shopt -s %s", opt)
	}
}

// Names may contain '=' (portfor bind a=bee 9555), and bash splits the word
// being completed at '=' (COMP_WORDBREAKS): readline replaces only the text
// after it, so the candidate to insert for `portfor get a=<TAB>` is "bee"
// (not a=bee, which gave a=a=bee, nor =eq, another name), with
// bash-completion and without.
func TestBashCompletionNameWithEquals(t *testing.T) {
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "bind", "a=bee", "9555").code)
	require.Equal(t, 0, portfor(t, db, "forward", "--", "=eq").code)
	env, script := shellEnv(t, "bash", db)
	// COMP_WORDS as bash sets them for the line `portfor get a=`.
	const harness = `
COMP_WORDS=(portfor get a =); COMP_CWORD=3; COMP_LINE='portfor get a='; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_portfor
printf '%s\n' "${COMPREPLY[@]}"
`
	for _, preamble := range []string{"", "source /usr/share/bash-completion/bash_completion"} {
		if preamble != "" {
			if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
				continue
			}
		}
		out := runShell(t, env, "bash", "--norc", "--noprofile", "-c", preamble+"\nsource '"+script+"'\n"+harness)
		assert.Equal(t, []string{"bee"}, shellLines(out), "after %q: %q", preamble, strings.TrimSpace(out))
	}
}
