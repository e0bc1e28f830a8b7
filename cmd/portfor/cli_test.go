package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// lines splits a command's stdout into its lines.
func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func ports(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, l := range lines(s) {
		p, err := strconv.Atoi(l)
		require.NoError(t, err, "stdout %q", s)
		out = append(out, p)
	}
	return out
}

func TestEveryCommandHasHelp(t *testing.T) {
	db := newDB(t)
	app := newApp(io.Discard, io.Discard)
	for _, cmd := range app.Commands {
		if cmd.Hidden {
			continue
		}
		for _, args := range [][]string{{cmd.Name, "--help"}, {cmd.Name, "-h"}, {"help", cmd.Name}} {
			o := portfor(t, db, args...)
			require.Equal(t, 0, o.code, "portfor %q: %s", args, o.stderr)
			assert.Empty(t, o.stderr, "portfor %q", args)
			assert.Contains(t, o.stdout, "portfor "+cmd.Name, "portfor %q", args)
			for _, f := range cmd.Flags {
				for _, n := range f.Names() {
					dash := "--"
					if len(n) == 1 {
						dash = "-"
					}
					assert.Contains(t, o.stdout, dash+n, "portfor %q lists every flag", args)
				}
			}
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		o := portfor(t, db, args...)
		require.Equal(t, 0, o.code, "portfor %q: %s", args, o.stderr)
		for _, f := range []string{"--db", "--lock-timeout"} {
			assert.Contains(t, o.stdout, f)
		}
		assert.NotContains(t, o.stdout, "--timeout", "the deprecated spelling is hidden")
	}
}

func TestTheShorthandRefusesCommandsAndTypos(t *testing.T) {
	db := newDB(t)
	for _, tt := range []struct{ name, near string }{
		{"lsit", "list"}, {"relase", "release"}, {"wiat", "wait"}, {"doctr", "doctor"}, {"fowrard", "forward"},
	} {
		o := portfor(t, db, tt.name)
		want := fmt.Sprintf("portfor: unknown command %q: did you mean '%s'? to register a name like this, use 'portfor forward %s' (try 'portfor --help')\n", tt.name, tt.near, tt.name)
		assert.Equal(t, outcome{"", want, 2}, o)
		assert.Equal(t, 1, portfor(t, db, "get", tt.name).code, "%s was not registered", tt.name)
	}
	// Far enough from every command: names as usual.
	for _, name := range []string{"web", "api", "db", "redis", "x", "listing-service"} {
		o := portfor(t, db, name)
		assert.Equal(t, 0, o.code, "%s: %s", name, o.stderr)
	}
	// forward takes any valid name, and the shorthand then knows it.
	o := portfor(t, db, "forward", "lsit")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Equal(t, o, portfor(t, db, "lsit"))
}

func TestManyNamesAtOnce(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "forward", "a", "b", "c")
	require.Equal(t, 0, o.code, o.stderr)
	abc := ports(t, o.stdout)
	require.Len(t, abc, 3)
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(abc))), 3, "three names, three ports")
	for i, n := range []string{"a", "b", "c"} {
		assert.Equal(t, outcome{fmt.Sprintf("%d\n", abc[i]), "", 0}, portfor(t, db, "get", n), "one line per name, in the order asked")
	}
	o = portfor(t, db, "get", "c", "a", "b")
	assert.Equal(t, outcome{fmt.Sprintf("%d\n%d\n%d\n", abc[2], abc[0], abc[1]), "", 0}, o)

	// NAME=PORT suggests a port per name; a known name keeps its port.
	p := freePort(t)
	o = portfor(t, db, "forward", "a", fmt.Sprintf("d=%d", p))
	require.Equal(t, 0, o.code, o.stderr)
	assert.Equal(t, []int{abc[0], p}, ports(t, o.stdout))

	// get is all or nothing: a script reading a line per name never reads a wrong one.
	o = portfor(t, db, "get", "a", "nosuch", "b", "gone")
	assert.Equal(t, outcome{"", "portfor: lookup \"nosuch\": not found; lookup \"gone\": not found\n", 1}, o)

	// release frees what it can and names what it could not.
	o = portfor(t, db, "release", "a", "nosuch", "b")
	assert.Equal(t, outcome{"", "portfor: release \"nosuch\": not found\n", 1}, o)
	assert.Equal(t, 1, portfor(t, db, "get", "a").code)
	assert.Equal(t, 1, portfor(t, db, "get", "b").code)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "release", "c", "d"))

	// A bad name in the list is a usage error, and nothing is assigned.
	o = portfor(t, db, "forward", "e", "bad name", "f")
	assert.Equal(t, outcome{"", "portfor: invalid id \"bad name\": contains whitespace (try 'portfor forward --help')\n", 2}, o)
	assert.Equal(t, 1, portfor(t, db, "get", "e").code)
	o = portfor(t, db, "forward", "web", "80o0")
	assert.Equal(t, outcome{"", "portfor: invalid port \"80o0\": want a number from 1 to 65535 (try 'portfor forward --help')\n", 2}, o, "a mistyped port is not a second name")
}

func TestMove(t *testing.T) {
	db := newDB(t)
	p1, p2 := 18092, 18093 // below the ephemeral range: no warning
	require.Equal(t, 0, portfor(t, db, "svc", strconv.Itoa(p1)).code)
	require.Equal(t, outcome{"", "", 0}, portfor(t, db, "bind", "other", "18090"))

	o := portfor(t, db, "svc", strconv.Itoa(p2))
	assert.Equal(t, outcome{fmt.Sprintf("%d\n", p1), fmt.Sprintf("portfor: svc keeps %d (asked %d); 'portfor move svc %d' changes it\n", p1, p2, p2), 0}, o)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "move", "svc", strconv.Itoa(p2)))
	assert.Equal(t, outcome{fmt.Sprintf("%d\n", p2), "", 0}, portfor(t, db, "svc", strconv.Itoa(p2)))
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "move", "svc", strconv.Itoa(p2)), "moving to the port it holds changes nothing")

	assert.Equal(t, outcome{"", "portfor: move \"svc\": port 18090: already assigned to \"other\"\n", 1}, portfor(t, db, "move", "svc", "18090"))
	assert.Equal(t, outcome{"", "portfor: move \"nosuch\": not found\n", 1}, portfor(t, db, "move", "nosuch", "18091"))
	assert.Equal(t, outcome{"", "portfor: invalid port \"0\": want a number from 1 to 65535 (try 'portfor move --help')\n", 2}, portfor(t, db, "move", "svc", "0"))
	assert.Equal(t, outcome{"", "portfor: missing PORT (try 'portfor move --help')\n", 2}, portfor(t, db, "move", "svc"))

	// The old port is free for others again.
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "bind", "third", strconv.Itoa(p1)))

	// Like forward, move and bind warn of a port the OS may hand out to an
	// outgoing connection.
	eph := freePort(t) // the kernel's pick: in the ephemeral range
	warning := fmt.Sprintf("portfor: warning: port %d is in the OS ephemeral range; an outgoing connection may hold it when svc starts\n", eph)
	assert.Equal(t, outcome{"", warning, 0}, portfor(t, db, "move", "svc", strconv.Itoa(eph)))
	require.Equal(t, 0, portfor(t, db, "release", "svc").code)
	assert.Equal(t, outcome{"", warning, 0}, portfor(t, db, "bind", "svc", strconv.Itoa(eph)))
}

func TestFlagsGoAnywhereBeforeTheDoubleDash(t *testing.T) {
	db := newDB(t)
	pid := strconv.Itoa(os.Getpid())
	o := portfor(t, db, "pick", pid, "-n", "3")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Len(t, ports(t, o.stdout), 3)

	o = portfor(t, db, "find", "1-1023", "--any")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Len(t, ports(t, o.stdout), 1)

	require.Equal(t, 0, portfor(t, db, "web").code)
	o = portfor(t, db, "list", "--json")
	require.Equal(t, 0, o.code)
	assert.Equal(t, o, portfor(t, "", "list", "--db", db, "--json"), "a global flag after the command")

	other := filepath.Join(t.TempDir(), "other.db")
	o = portfor(t, db, "web", "--db", other)
	require.Equal(t, 0, o.code, o.stderr)
	assert.Equal(t, 1, portfor(t, db, "get", "nosuch", "--db", other).code)
	assert.Equal(t, o, portfor(t, db, "get", "web", "--db", other), "the shorthand takes flags after NAME")

	// A flag without its value is refused, never given the next word.
	o = portfor(t, db, "get", "web", "--db")
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "list", "--db", filepath.Join(t.TempDir(), "none.db")))

	// After "--" nothing is a flag.
	o = portfor(t, db, "get", "--", "--json")
	assert.Equal(t, outcome{"", "portfor: invalid id \"--json\": starts with '-'\n", 2}, o)
}

func TestLockTimeoutAndItsOldSpelling(t *testing.T) {
	db := newDB(t)
	assert.Equal(t, 0, portfor(t, db, "--lock-timeout", "2s", "web").code)

	cmd := command(t, db, "web")
	cmd.Env = append(cmd.Env, "PORTFOR_LOCK_TIMEOUT=soon")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, 2, cmd.ProcessState.ExitCode())
	assert.Equal(t, "portfor: $PORTFOR_LOCK_TIMEOUT: invalid duration \"soon\": want seconds (5, 0.5) or a duration (5s, 500ms) (try 'portfor --help')\n", string(out))

	o := portfor(t, db, "--timeout", "2s", "web")
	assert.Equal(t, 0, o.code)
	assert.Equal(t, "portfor: warning: the global --timeout is now --lock-timeout ($PORTFOR_LOCK_TIMEOUT); the old spelling goes in the next release\n", o.stderr)
	o = portfor(t, db, "--timeout", "soon", "web")
	assert.Equal(t, outcome{"", "portfor: --timeout: invalid duration \"soon\": want seconds (5, 0.5) or a duration (5s, 500ms) (try 'portfor --help') (the global --timeout is now --lock-timeout)\n", 2}, o, "one line, the note in it")
}

func TestPickInARangeSorted(t *testing.T) {
	db := newDB(t)
	pid := strconv.Itoa(os.Getpid())
	o := portfor(t, db, "pick", "--ports", "23000-23100", "-n", "5", pid)
	require.Equal(t, 0, o.code, o.stderr)
	got := ports(t, o.stdout)
	require.Len(t, got, 5)
	assert.True(t, slices.IsSorted(got), "ascending: %v", got)
	for _, p := range got {
		assert.True(t, p >= 23000 && p <= 23100, "%d in range", p)
	}
	o = portfor(t, db, "pick", "-n", "8", pid)
	require.Equal(t, 0, o.code, o.stderr)
	assert.True(t, slices.IsSorted(ports(t, o.stdout)), o.stdout)

	o = portfor(t, db, "pick", "--ports", "23000-", pid)
	assert.Equal(t, 2, o.code)
	assert.Contains(t, o.stderr, "--ports")
}

func TestVersionOf(t *testing.T) {
	set := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tt := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{debug.BuildInfo{}, "(devel)"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: set("vcs.revision", "04da94ef349cae70353c4e7f7614b3a43ac88d9f", "vcs.time", "2026-11-22T06:47:58Z", "vcs.modified", "false")},
			"(devel) (commit 04da94ef349c, 2026-11-22T06:47:58Z)"},
		{debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261122064758-04da94ef349c+dirty"}, Settings: set("vcs.revision", "04da94ef349cae70353c4e7f7614b3a43ac88d9f", "vcs.time", "2026-11-22T06:47:58Z", "vcs.modified", "true")},
			"v0.0.0-20261122064758-04da94ef349c+dirty (commit 04da94ef349c, 2026-11-22T06:47:58Z, modified)"},
	} {
		assert.Equal(t, tt.want, versionOf(&tt.bi))
	}
	o := portfor(t, newDB(t), "--version")
	assert.Equal(t, outcome{"portfor version " + version() + "\n", "", 0}, o)
}

// TestVersionOfACheckoutBuild builds the command from this checkout with
// its commit recorded and checks that --version names it.
func TestVersionOfACheckoutBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "portfor")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/portfor")
	build.Dir = strings.TrimSpace(string(top))
	build.Env = append(os.Environ(), "GOFLAGS=")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	if m, _ := exec.Command("go", "version", "-m", bin).Output(); !strings.Contains(string(m), "vcs.revision=") {
		t.Skip("go recorded no commit for this checkout (a linked git worktree, or git missing)")
	}
	out, err = exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	assert.Regexp(t, `^portfor version v\S+ \(commit `+strings.TrimSpace(string(head))[:12]+`, \d{4}-\d\d-\d\dT[^)]*\)\n$`, string(out))
}

// TestBinaryStartsLight keeps packages whose initialisation every run of
// the command would pay for out of it: net/http added about a millisecond
// to each call and crypto/tls two more, for the one wait that makes a
// request (it has internal/httpget instead, and portfor-https for TLS).
func TestBinaryStartsLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	for _, heavy := range []string{"net/http", "crypto/tls", "crypto/x509", "mime/multipart", "compress/gzip"} {
		assert.NotContains(t, deps, heavy)
	}
}

// cliNames lists the names of the app's commands, for tests that go
// through all of them.
func cliNames(app *cli.App) []string {
	var n []string
	for _, c := range app.Commands {
		n = append(n, c.Names()...)
	}
	return n
}

func TestInterspersed(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, tt := range []struct{ in, want string }{
		{"find 8000-8100 --any", "find --any -- 8000-8100"},
		{"pick 42 -n 3", "pick -n 3 -- 42"},
		{"pick -n=3 42", "pick -n=3 -- 42"},
		{"get web --db x", "--db x get -- web"},
		{"--db x get web", "--db x get -- web"},
		{"web 8000 --lock-timeout 1", "--lock-timeout 1 -- web 8000"},
		{"get -- --json", "get -- --json"},
		{"wait 8080 -t 1 --db x -- cmd --db y", "--db x wait 8080 -t 1 -- cmd --db y"},
		{"wait 8080 --timeout 1", "wait 8080 --timeout 1"},
		{"list", "list"},
		{"--version", "--version"},
		{"release --port 80", "release --port 80"},
		// A flag missing its value goes where its parser will say so.
		{"get web --db", "--db"},
		{"pick 42 -n", "pick -n"},
		{"web --lock-timeout", "--lock-timeout"},
		// Help wins, and its topic is the command, not the arguments.
		{"get web -h", "get -h"},
		{"pick 42 -n 3 --help", "pick --help"},
		{"web 8000 -h", "-h"},
		{"--db x get web -h", "--db x get -h"},
		// -v is the version only before the command.
		{"release web -v", "release -v -- web"},
		{"web -v", "-- web -v"},
		{"-v", "-v"},
	} {
		got := interspersed(app, append([]string{"portfor"}, strings.Fields(tt.in)...))
		assert.Equal(t, "portfor "+tt.want, strings.Join(got, " "), tt.in)
	}
	assert.Contains(t, cliNames(app), "move")
}

func FuzzInterspersed(f *testing.F) {
	for _, s := range []string{"find 8000-8100 --any", "pick 42 -n", "get -- -x", "--db", "wait -- x", "-n=3 a"} {
		f.Add(s)
	}
	app := newApp(io.Discard, io.Discard)
	f.Fuzz(func(t *testing.T, s string) {
		in := append([]string{"portfor"}, strings.Fields(s)...)
		out := interspersed(app, in)
		// Only moved, never lost or invented: the same words, "--" aside.
		strip := func(a []string) []string {
			return slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(a), func(w string) bool { return w == "--" })))
		}
		if slices.Equal(strip(in), strip(out)) {
			return
		}
		// Or words were dropped for help or for a flag missing its value,
		// which then ends the line.
		name, _, ok := flagName(out[len(out)-1])
		if !ok || !isHelp(name) && !strings.HasSuffix(strings.Join(in, " "), out[len(out)-1]) {
			t.Fatalf("%q became %q", in, out)
		}
		for _, w := range out {
			if w != "--" && !slices.Contains(in, w) {
				t.Fatalf("%q became %q: %q invented", in, out, w)
			}
		}
	})
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"list", "list", 0}, {"lsit", "list", 1}, {"lst", "list", 1}, {"lists", "list", 1}, {"relaese", "release", 1}, {"web", "wait", 3}, {"", "get", 3}} {
		assert.Equal(t, tt.d, editDistance(tt.a, tt.b), "%s %s", tt.a, tt.b)
	}
}

// BenchmarkShorthandArgs is what the command line costs `portfor NAME`
// before the registry is touched: reordering and the typo check.
func BenchmarkShorthandArgs(b *testing.B) {
	app := newApp(io.Discard, io.Discard)
	args := []string{"portfor", "my-service", "8000"}
	for b.Loop() {
		out := interspersed(app, args)
		if nearCommand(app, out[len(out)-2]) != "" {
			b.Fatal("my-service is no typo")
		}
	}
}
