package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// completionDB returns a registry holding my-service, my-other and web, and
// a lease, which is no name to complete.
func completionDB(t *testing.T) string {
	t.Helper()
	db := newDB(t)
	for _, name := range []string{"my-service", "my-other", "web"} {
		o := portfor(t, db, name)
		require.Equal(t, 0, o.code, o.stderr)
	}
	o := portfor(t, db, "pick", strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, o.code, o.stderr)
	return db
}

// candidates runs `portfor completion __complete -- words...` and returns the
// candidates without their descriptions, checking that it said nothing else.
func candidates(t *testing.T, db string, words ...string) []string {
	t.Helper()
	o := portfor(t, db, append([]string{"completion", completeArg, "--"}, words...)...)
	require.Equal(t, 0, o.code, "%q: %s", words, o.stderr)
	require.Empty(t, o.stderr, "%q", words)
	var out []string
	for line := range strings.Lines(o.stdout) {
		name, _, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		out = append(out, name)
	}
	return out
}

func TestCompletionCandidates(t *testing.T) {
	db := completionDB(t)
	other := newDB(t)
	require.Equal(t, 0, portfor(t, other, "elsewhere").code)

	top := candidates(t, db, "")
	for _, want := range []string{"forward", "get", "release", "wait", "check", "completion", "help", "my-service", "web"} {
		assert.Contains(t, top, want, "a command, or a NAME for `portfor NAME`")
	}
	for _, c := range top {
		assert.False(t, strings.HasPrefix(c, "_") || strings.HasPrefix(c, "lease:"), "hidden: %q", c)
	}

	names := []string{"my-other", "my-service", "web"}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"ge"}, []string{"get"}},
		{[]string{"un"}, []string{"unbind"}}, // an alias, when its command does not match
		{[]string{"help", "comp"}, []string{"completion"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"get", ""}, names},
		{[]string{"run", "web", ""}, []string{"my-other", "my-service"}}, // each once
		{[]string{"run", "web", "--", ""}, nil},
		{[]string{"get", "my-service", ""}, []string{"my-other", "web"}}, // get NAME...: each once
		{[]string{"release", "web", "my-"}, []string{"my-other", "my-service"}},
		{[]string{"move", "web", ""}, nil}, // move NAME PORT
		{[]string{"check", "web", ""}, nil},
		{[]string{"release", "my-"}, []string{"my-other", "my-service"}},
		{[]string{"unbind", "w"}, []string{"web"}},
		{[]string{"check", "w"}, []string{"web"}},
		{[]string{"forward", "w"}, []string{"web"}},
		{[]string{"bind", ""}, nil}, // a new name
		{[]string{"my-service", ""}, nil},
		{[]string{"wait", "my-service", ""}, []string{"my-other", "web", "occupied", "free"}},
		{[]string{"wait", "-t", "5", "w"}, []string{"web"}},
		{[]string{"wait", "web", "--", ""}, nil},
		{[]string{"--timeout", "1", "get", "w"}, []string{"web"}},
		// --db earlier on the line, in each form bash may hand it over
		{[]string{"--db", other, "get", ""}, []string{"elsewhere"}},
		{[]string{"--db=" + other, "get", ""}, []string{"elsewhere"}},
		{[]string{"--db", "=", other, "get", ""}, []string{"elsewhere"}},
		{[]string{"get", "--db", other, ""}, []string{"elsewhere"}}, // a global flag after the command
		{[]string{"get", "web", "--db", ""}, []string{completeFiles}},
		{[]string{"wait", "--db=" + other, "e"}, []string{"elsewhere"}},
		{[]string{"--db", filepath.Join(t.TempDir(), "none.db"), "get", ""}, nil},
		{[]string{"--db", ""}, []string{completeFiles}},
		{[]string{"--db=/tm"}, []string{completeFiles}},
		{[]string{"--db", "=", ""}, []string{completeFiles}},
		{[]string{"--timeout", ""}, nil},
	} {
		assert.Equal(t, tc.want, candidates(t, db, tc.words...), "%q", tc.words)
	}

	flags := func(words ...string) []string {
		got := candidates(t, db, words...)
		sort.Strings(got)
		return got
	}
	// A command's flags, and the global ones but --help and --version.
	waitFlags := flags("wait", "-")
	assert.Subset(t, waitFlags, []string{"--timeout", "-t", "--help", "-h", "--db"}, "wait parses its own flags")
	assert.Equal(t, 1, strings.Count(strings.Join(waitFlags, " ")+" ", "--timeout "), "wait's --timeout shadows the global one: %q", waitFlags)
	assert.NotContains(t, waitFlags, "--version")
	assert.Subset(t, flags("wait", "web", "--"), []string{"--timeout", "--help", "--db"}, "flags go after the arguments")
	assert.Subset(t, flags("release", "-"), []string{"--port", "--help", "--db"})
	assert.Subset(t, flags("get", "web", "-"), []string{"--help", "--db"})
	assert.Subset(t, flags("-"), []string{"--db", "--help", "--version"})
	assert.Equal(t, []string{"--db"}, flags("--d"))
	assert.Equal(t, []string{"--port"}, flags("release", "--p"))
}

// The candidates carry a description after a tab, on one line: a name's
// port, a command's usage.
func TestCompletionDescriptions(t *testing.T) {
	db := completionDB(t)
	o := portfor(t, db, "completion", completeArg, "--", "get", "we")
	port := strings.TrimSpace(portfor(t, db, "get", "web").stdout)
	assert.Equal(t, outcome{"web\tport " + port + "\n", "", 0}, o)
	get := newApp(io.Discard, io.Discard).Command("get")
	require.NotNil(t, get)
	o = portfor(t, db, "completion", completeArg, "--", "ge")
	assert.Equal(t, outcome{"get\t" + get.Usage + "\n", "", 0}, o)
}

// snapshot lists what is under dir: names, sizes and modification times.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[path] = fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10) + " " + fi.ModTime().String()
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestCompletionNeverWritesTheRegistry(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		db := newDB(t) // its directory does not exist either
		assert.Empty(t, candidates(t, db, "get", ""))
		assert.NotContains(t, candidates(t, db, ""), "my-service")
		_, err := os.Lstat(filepath.Dir(db))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("present", func(t *testing.T) {
		db := completionDB(t)
		before := snapshot(t, filepath.Dir(db))
		assert.NotEmpty(t, candidates(t, db, "get", ""))
		assert.Equal(t, before, snapshot(t, filepath.Dir(db)))
	})
	t.Run("no lock file", func(t *testing.T) {
		db := completionDB(t)
		require.NoError(t, os.Remove(db+".lock"))
		before := snapshot(t, filepath.Dir(db))
		assert.Empty(t, candidates(t, db, "get", ""), "reading would make the lock file")
		assert.Equal(t, before, snapshot(t, filepath.Dir(db)))
	})
}

// A registry locked by another process gives no names, quickly and quietly.
func TestCompletionGivesUpOnABusyRegistry(t *testing.T) {
	db := completionDB(t)
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), "PORTFOR_TEST_HOLD_LOCK="+db+".lock", "GORACE=atexit_sleep_ms=0")
	stdout, err := holder.StdoutPipe()
	require.NoError(t, err)
	_, err = holder.StdinPipe() // closed when the test ends: the holder then lets go
	require.NoError(t, err)
	require.NoError(t, holder.Start())
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	start := time.Now()
	assert.Empty(t, candidates(t, db, "get", ""))
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by completionListTimeout, not the lock timeout")
	assert.Equal(t, []string{"get"}, candidates(t, db, "ge"), "commands need no registry")
}

func TestCompletionScriptsAndUsage(t *testing.T) {
	db := newDB(t)
	for shell, want := range map[string]string{
		"bash": "complete -F _portfor portfor\n",
		"zsh":  "compdef _portfor portfor\n",
		"fish": "complete -c portfor -f -a '(__portfor_complete)'\n",
	} {
		o := portfor(t, db, "completion", shell)
		assert.Equal(t, 0, o.code, o.stderr)
		assert.Contains(t, o.stdout, want, shell)
		assert.Contains(t, o.stdout, "completion __complete -- ", shell)
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		o := portfor(t, db, args...)
		assert.Equal(t, exitUsage, o.code, "%q", args)
		assert.Empty(t, o.stdout, "%q", args)
		assert.Contains(t, o.stderr, "(try 'portfor completion --help')", "%q", args)
	}
	o := portfor(t, db, "completion", "--help")
	assert.Equal(t, 0, o.code)
	assert.Contains(t, o.stdout, "portfor completion - ")
	_, err := os.Lstat(filepath.Dir(db))
	assert.ErrorIs(t, err, os.ErrNotExist, "printing a script opens no registry")
}

// shellEnv puts a `portfor` that runs this test binary as the command first
// on PATH, writes the completion script for shell, and returns the
// environment and the script's path. It skips when shell is not installed,
// unless $CI is set.
func shellEnv(t *testing.T, shell, db string) (env []string, script string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the completion scripts are for Unix shells")
	}
	if _, err := exec.LookPath(shell); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", shell, err)
		}
		t.Skipf("%s is not installed (apt-get install %s): %v", shell, shell, err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nPORTFOR_TEST_AS_CLI=1 GORACE=atexit_sleep_ms=0 exec '" +
		strings.ReplaceAll(os.Args[0], "'", `'\''`) + "' \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "portfor"), []byte(wrapper), 0o755))
	o := portfor(t, db, "completion", shell)
	require.Equal(t, 0, o.code, o.stderr)
	script = filepath.Join(t.TempDir(), "portfor."+shell)
	require.NoError(t, os.WriteFile(script, []byte(o.stdout), 0o644))
	env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "PORTFOR_DB="+db, "HOME="+t.TempDir())
	return env, script
}

// runShell runs a shell command line with env in a directory of its own,
// bounded so that a shell waiting for input fails the test instead of hanging.
func runShell(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// shellLines splits out into its lines, each cut at its first tab.
func shellLines(out string) []string {
	var l []string
	for line := range strings.Lines(out) {
		name, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), "\t")
		l = append(l, name)
	}
	return l
}

func TestCompletionBash(t *testing.T) {
	db := completionDB(t)
	env, script := shellEnv(t, "bash", db)
	// complete LINE sets what bash sets for a completion at the end of LINE
	// (COMP_WORDS split as bash splits them, '=' apart), calls the function
	// and prints COMPREPLY.
	const harness = `
complete_at() {
	COMP_LINE=$1; COMP_POINT=${#1}
	local IFS=' '
	read -r -a COMP_WORDS <<<"$1"
	[[ $1 == *' ' ]] && COMP_WORDS+=('')
	COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
	COMPREPLY=()
	_portfor
	printf '%s\n' "${COMPREPLY[@]}"
}
`
	other := filepath.Join(t.TempDir(), "other.db")
	require.Equal(t, 0, portfor(t, other, "elsewhere").code)
	for _, preamble := range []string{"", "source /usr/share/bash-completion/bash_completion"} {
		if preamble != "" {
			if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
				t.Log("bash-completion is not installed: its _get_comp_words_by_ref is not tried")
				continue
			}
		}
		for _, tc := range []struct {
			line string
			want []string
		}{
			{"portfor get my", []string{"my-other", "my-service"}},
			{"portfor release ", []string{"my-other", "my-service", "web"}},
			{"portfor wa", []string{"wait"}},
			{"portfor release --p", []string{"--port"}},
			{"portfor get web ", []string{"my-other", "my-service"}},
			{"portfor --db " + other + " get ", []string{"elsewhere"}},
			{"portfor --db = " + other + " get ", []string{"elsewhere"}}, // --db=PATH as bash splits it
		} {
			out := runShell(t, env, "bash", "--norc", "--noprofile", "-c", preamble+"\nsource '"+script+"'\n"+harness+"complete_at '"+tc.line+"'")
			assert.Equal(t, tc.want, shellLines(out), "%q after %q", tc.line, preamble)
		}
		out := runShell(t, env, "bash", "--norc", "--noprofile", "-c", preamble+"\nsource '"+script+"'\n"+harness+"complete_at 'portfor --db "+filepath.Dir(other)+"/oth'")
		assert.Contains(t, shellLines(out), other, "--db takes a file name, after %q", preamble)
	}
}

func TestCompletionFish(t *testing.T) {
	db := completionDB(t)
	env, script := shellEnv(t, "fish", db)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"portfor get my", []string{"my-other", "my-service"}},
		{"portfor unbind w", []string{"web"}},
		{"portfor wa", []string{"wait"}},
		{"portfor completion z", []string{"zsh"}},
	} {
		out := runShell(t, env, "fish", "--no-config", "-c", "source '"+script+"'; complete -C'"+tc.line+"'")
		assert.Equal(t, tc.want, shellLines(out), "%q", tc.line)
	}
	out := runShell(t, env, "fish", "--no-config", "-c", "source '"+script+"'; complete -C'portfor wait -'")
	assert.Subset(t, shellLines(out), []string{"--timeout", "-t"})
}

// zshHarness completes $2 in an interactive zsh on a pseudo-terminal
// (zsh/zpty) with the script $1 loaded after compinit, and prints each
// candidate offered, one per line, between markers that the echo of the
// typed line cannot match.
const zshHarness = `
zmodload zsh/zpty || exit 1
zpty z zsh -f -i
zpty -w z 'PS1= RPROMPT='
zpty -w z 'autoload -Uz compinit && compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z 'compadd() { local -a hits; builtin compadd -O hits "$@"; (( $#hits )) && print -rl -- $hits >&2; builtin compadd "$@" }'
zpty -w z 'comptest() { print -n "<B""EGIN>" >&2; zle complete-word; print -n "<E""ND>" >&2 }; zle -N comptest; bindkey "^T" comptest'
zpty -n -w z "$2"$'\024'
zpty -r z line '*<BEGIN>*' || exit 1
zpty -r z line '*<END>*' || exit 1
print -r -- "${${line%<END>*}##*<BEGIN>}"
zpty -d z
`

func TestCompletionZsh(t *testing.T) {
	db := completionDB(t)
	env, script := shellEnv(t, "zsh", db)
	runShell(t, env, "zsh", "-n", script)
	harness := filepath.Join(t.TempDir(), "harness.zsh")
	require.NoError(t, os.WriteFile(harness, []byte(zshHarness), 0o644))
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"portfor get my", []string{"my-other", "my-service"}},
		{"portfor release w", []string{"web"}},
		{"portfor wa", []string{"wait"}},
		{"portfor completion b", []string{"bash"}},
	} {
		out := runShell(t, env, "zsh", "-f", harness, script, tc.line)
		var got []string
		for _, l := range shellLines(out) {
			if l != "" {
				got = append(got, l)
			}
		}
		assert.Equal(t, tc.want, got, "%q", tc.line)
	}
}
