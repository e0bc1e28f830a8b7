package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/lock"
)

// With PORTFOR_TEST_AS_CLI=1 the test binary is the portfor command.
// With PORTFOR_TEST_HOLD_LOCK=PATH it takes that lock exclusively, prints
// "locked" and holds it until its stdin closes.
// With PORTFOR_TEST_SQUAT=ADDRESS it binds that Unix socket address, prints
// "ready" and answers "22\n" to every client until its stdin closes: another
// user squatting on the port server's name.
// With PORTFOR_TEST_LISTEN="NETWORK ADDRESS" (tcp4, tcp6, udp4, udp6) it
// listens or binds there, prints "ready PORT" and holds the socket until
// its stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("PORTFOR_TEST_AS_CLI") == "1" {
		main()
	}
	if path := os.Getenv("PORTFOR_TEST_HOLD_LOCK"); path != "" {
		os.Exit(holdLockMain(path))
	}
	if addr := os.Getenv("PORTFOR_TEST_SQUAT"); addr != "" {
		os.Exit(squatMain(addr))
	}
	if spec := os.Getenv("PORTFOR_TEST_LISTEN"); spec != "" {
		os.Exit(listenMain(spec))
	}
	os.Exit(m.Run())
}

type outcome struct {
	stdout, stderr string
	code           int
}

// command returns the test binary set up to run as the command with
// PORTFOR_DB=db, in a directory of its own under t.TempDir(), so that nothing
// it writes by a relative path lands in the source tree.
func command(t testing.TB, db string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PORTFOR_TEST_AS_CLI=1", "PORTFOR_DB="+db, "GORACE=atexit_sleep_ms=0")
	cmd.Dir = t.TempDir()
	return cmd
}

// portfor runs the test binary as the command with PORTFOR_DB=db.
func portfor(t *testing.T, db string, args ...string) outcome {
	t.Helper()
	return outcomeOf(t, command(t, db, args...))
}

// outcomeOf runs cmd and returns what it printed and its exit status.
func outcomeOf(t *testing.T, cmd *exec.Cmd) outcome {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return outcome{stdout.String(), stderr.String(), code}
}

func newDB(t *testing.T) string { return filepath.Join(t.TempDir(), "state", "registry.db") }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestForwardPrintsTheSamePortEveryTime(t *testing.T) {
	db := newDB(t)
	first := portfor(t, db, "my-service")
	require.Equal(t, 0, first.code, first.stderr)
	assert.Empty(t, first.stderr)
	port, err := strconv.Atoi(strings.TrimSuffix(first.stdout, "\n"))
	require.NoError(t, err, "stdout carries only the port: %q", first.stdout)
	for _, args := range [][]string{{"my-service"}, {"forward", "my-service"}, {"get", "my-service"}, {"my-service", strconv.Itoa(port)}} {
		o := portfor(t, db, args...)
		assert.Equal(t, outcome{fmt.Sprintf("%d\n", port), "", 0}, o, "%v", args)
	}
	// Another PORT keeps the port, and says so.
	other := port%60000 + 1025
	o := portfor(t, db, "my-service", strconv.Itoa(other))
	assert.Equal(t, outcome{fmt.Sprintf("%d\n", port), fmt.Sprintf("portfor: my-service keeps %d (asked %d); 'portfor move my-service %d' changes it\n", port, other, other), 0}, o)
}

func TestSuggestedPortAndEphemeralWarning(t *testing.T) {
	db := newDB(t)
	p := freePort(t) // the OS hands these out from its ephemeral range
	o := portfor(t, db, "svc", strconv.Itoa(p))
	require.Equal(t, 0, o.code)
	assert.Equal(t, fmt.Sprintf("%d\n", p), o.stdout)
	assert.Equal(t, fmt.Sprintf("portfor: warning: port %d is in the OS ephemeral range; an outgoing connection may hold it when svc starts\n", p), o.stderr)
}

func TestBindReleaseList(t *testing.T) {
	db := newDB(t)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "bind", "nginx", "18080"))
	assert.Equal(t, outcome{"", "portfor: bind \"apache\": port 18080: already assigned to \"nginx\"\n", 1}, portfor(t, db, "bind", "apache", "18080"))
	assert.Equal(t, outcome{"", "portfor: bind \"nginx\": \"nginx\" already holds port 18080, not 18081 (release it first)\n", 1}, portfor(t, db, "bind", "nginx", "18081"))
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "bind", "list", "18090"))
	assert.Equal(t, outcome{"18090\n", "", 0}, portfor(t, db, "forward", "list"), "a NAME that is a command is reachable")

	o := portfor(t, db, "list")
	require.Equal(t, 0, o.code, o.stderr)
	lines := strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^NAME +SCOPE +PORT +KIND +UP +CREATED +DIR$`, lines[0])
	assert.Regexp(t, `^list +- +18090 +stable +\S+ +\d{4}-\d\d-\d\d \d\d:\d\d +/`, lines[1])
	assert.Regexp(t, `^nginx +- +18080 +stable `, lines[2])
	assert.Equal(t, strings.Index(lines[0], "PORT"), strings.Index(lines[2], "18080"), "columns are aligned")

	o = portfor(t, db, "list", "--json")
	require.Equal(t, 0, o.code)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &entries))
	require.Len(t, entries, 2)
	assert.Equal(t, "list", entries[0]["name"])
	assert.Equal(t, float64(18090), entries[0]["port"])
	assert.Equal(t, "stable", entries[0]["kind"])

	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "release", "nginx"))
	assert.Equal(t, outcome{"", "portfor: release \"nginx\": not found\n", 1}, portfor(t, db, "unbind", "nginx"))
	assert.Equal(t, outcome{"", "portfor: lookup \"nginx\": not found\n", 1}, portfor(t, db, "get", "nginx"))
}

func TestEmptyRegistryList(t *testing.T) {
	db := newDB(t)
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "list"))
	assert.Equal(t, outcome{"[]\n", "", 0}, portfor(t, db, "list", "--json"))
}

func TestUsageErrorsExit2WithOneLine(t *testing.T) {
	db := newDB(t)
	tests := []struct {
		args   []string
		stderr string
	}{
		{nil, "portfor: missing NAME (try 'portfor --help')"},
		{[]string{"a b"}, `portfor: invalid id "a b": contains whitespace (try 'portfor --help')`},
		{[]string{"host:80"}, `portfor: invalid id "host:80": contains ':' (try 'portfor --help')`},
		{[]string{"web", "http"}, `portfor: invalid port "http": want a number from 1 to 65535 (try 'portfor --help')`},
		{[]string{"web", "0"}, `portfor: invalid port "0": want a number from 1 to 65535 (try 'portfor --help')`},
		{[]string{"web", "65536"}, `portfor: invalid port "65536": want a number from 1 to 65535 (try 'portfor --help')`},
		{[]string{"web", "80", "extra"}, `portfor: unexpected argument "extra" after NAME PORT (many names: 'portfor forward NAME...') (try 'portfor --help')`},
		{[]string{"--bogus"}, `portfor: flag provided but not defined: -bogus (try 'portfor --help')`},
		{[]string{"--lock-timeout", "soon", "web"}, `portfor: --lock-timeout: invalid duration "soon": want seconds (5, 0.5) or a duration (5s, 500ms) (try 'portfor --help')`},
		{[]string{"--lock-timeout", "-1", "web"}, `portfor: --lock-timeout: invalid duration "-1": negative (try 'portfor --help')`},
		{[]string{"get"}, "portfor: missing NAME (try 'portfor get --help')"},
		{[]string{"bind", "web"}, "portfor: missing PORT (try 'portfor bind --help')"},
		{[]string{"bind", "web", "x"}, `portfor: invalid port "x": want a number from 1 to 65535 (try 'portfor bind --help')`},
		{[]string{"release"}, "portfor: missing NAME (or --scope SCOPE, to free a whole scope) (try 'portfor release --help')"},
		{[]string{"list", "x"}, `portfor: unexpected argument "x": portfor list takes none (try 'portfor list --help')`},
		{[]string{"list", "--yaml"}, `portfor: flag provided but not defined: -yaml (try 'portfor list --help')`},
	}
	for _, tt := range tests {
		o := portfor(t, db, tt.args...)
		assert.Equal(t, outcome{"", tt.stderr + "\n", 2}, o, "portfor %q", tt.args)
	}
	_, err := os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "usage errors write nothing")
}

func TestBadRegistryFileExits1AndIsKept(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	require.NoError(t, os.WriteFile(db, []byte("not a registry"), 0o600))
	o := portfor(t, db, "web")
	assert.Equal(t, 1, o.code)
	assert.Empty(t, o.stdout)
	assert.Equal(t, fmt.Sprintf("portfor: forward \"web\": open registry %s: not a portfor registry: no valid bbolt header\n", db), o.stderr)
	data, err := os.ReadFile(db)
	require.NoError(t, err)
	assert.Equal(t, "not a registry", string(data))
}

func TestHelpAndVersion(t *testing.T) {
	db := newDB(t)
	o := portfor(t, db, "--help")
	assert.Equal(t, 0, o.code)
	assert.Contains(t, o.stdout, "PORT=$(portfor my-service 8000)")
	assert.Contains(t, o.stdout, "portfor forward list")
	o = portfor(t, db, "bind", "--help")
	assert.Equal(t, 0, o.code)
	assert.Contains(t, o.stdout, "portfor bind [command options] NAME PORT")
	o = portfor(t, db, "--version")
	assert.Equal(t, 0, o.code)
	assert.Regexp(t, `^portfor version \S+\n$`, o.stdout)
}

func TestParseDuration(t *testing.T) {
	good := map[string]string{"5": "5s", "0.5": "500ms", "5s": "5s", "500ms": "500ms", "1m30s": "1m30s", "0": "0s", " 2 ": "2s"}
	for in, want := range good {
		d, err := parseDuration(in)
		require.NoError(t, err, "parseDuration(%q)", in)
		assert.Equal(t, want, d.String(), "parseDuration(%q)", in)
	}
	for _, in := range []string{"", "x", "-1", "-1s", "NaN", "Inf", "1e300", "5 s"} {
		_, err := parseDuration(in)
		assert.Error(t, err, "parseDuration(%q)", in)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5", "0.5", "5s", "500ms", "-1", "NaN", "1e300", "", "1h2m3.5s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("parseDuration(%q) = %v", s, d)
		}
	})
}

// FuzzRun feeds arbitrary command lines to the whole CLI, in process, on a
// real registry: whatever the input, it must exit 0, 1 or 2, and on failure
// print exactly one line, starting "portfor: ", on stderr and nothing on stdout.
func FuzzRun(f *testing.F) {
	seeds := [][3]string{
		{"web", "", ""}, {"web", "8000", ""}, {"get", "web", ""}, {"bind", "web", "8000"},
		{"release", "web", ""}, {"list", "--json", ""}, {"--timeout", "0", "x"}, {"--lock-timeout", "0", "x"}, {"forward", "list", ""}, {"get", "a", "b"}, {"find", "8000-8100", "--any"},
		{"--db", "", "web"}, {"a:b", "1", ""}, {"bind", "x", "-1"}, {"-", "", ""}, {"--", "web", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	db := filepath.Join(f.TempDir(), "registry.db")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{"portfor", "--db", db}
		for _, s := range []string{a, b, c} {
			if s != "" {
				args = append(args, s)
			}
		}
		for _, s := range args[3:] {
			// wait and serve wait (and wait may run a command), and the targets of
			// wait and check may name any host, which would be looked up: their
			// parsers have fuzz targets of their own.
			if s == "wait" || s == "serve" || s == "check" {
				return
			}
			// stop signals whatever holds the port it is given, the
			// machine's own services among them.
			if s == "stop" {
				return
			}
			// urfave/cli takes "-db" as well as "--db": any flag that may
			// name another registry file, and help and version, are out of scope.
			// env --write writes the file it is given, wherever that is.
			if s == "help" || s == "h" || hasFlagPrefix(s, "d") || hasFlagPrefix(s, "h") || hasFlagPrefix(s, "v") || hasFlagPrefix(s, "w") {
				return
			}
		}
		// Whatever slips through writes into a directory of this input's own.
		t.Chdir(t.TempDir())
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		switch code {
		case 0:
		case 1, 2:
			if stdout.Len() != 0 {
				t.Fatalf("%q: exit %d with stdout %q", args, code, stdout.String())
			}
			if !strings.HasPrefix(stderr.String(), "portfor: ") || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("%q: exit %d with stderr %q", args, code, stderr.String())
			}
		default:
			t.Fatalf("%q: exit %d", args, code)
		}
	})
}

// hasFlagPrefix reports whether arg is a flag, "-" or "--" then a name,
// whose name starts with prefix.
func hasFlagPrefix(arg, prefix string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	return name != arg && strings.HasPrefix(name, prefix)
}

func holdLockMain(path string) int {
	l, err := lock.Acquire(context.Background(), path, lock.Exclusive)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := l.Unlock(); err != nil {
		return 1
	}
	return 0
}

func squatMain(addr string) int {
	l, err := net.Listen("unix", addr)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n') // the request
			fmt.Fprint(c, "22\n")
			c.Close()
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// Text other users or processes chose (a directory name, a command line)
// reaches the terminal escaped: no escape sequence from list's tables.
func TestListEscapesWhatATerminalWouldActOn(t *testing.T) {
	db := newDB(t)
	dir := filepath.Join(t.TempDir(), "x\x1b[2J\x1b]0;PWNED\a")
	require.NoError(t, os.Mkdir(dir, 0o700))
	cmd := command(t, db, "web")
	cmd.Dir = dir
	require.NoError(t, cmd.Run())
	o := portfor(t, db, "list")
	require.Equal(t, 0, o.code, o.stderr)
	assert.NotContains(t, o.stdout, "\x1b")
	assert.NotContains(t, o.stdout, "\a")
	assert.Contains(t, o.stdout, `x\x1b[2J\x1b]0;PWNED\a`)
	assert.Equal(t, "plain /dir", printable("plain /dir"))
}
