package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envDB returns a registry where web holds 18301 and api 18302.
func envDB(t *testing.T) string {
	t.Helper()
	db := newDB(t)
	for _, a := range [][]string{{"bind", "web", "18301"}, {"bind", "api", "18302"}} {
		o := portfor(t, db, a...)
		require.Equal(t, 0, o.code, o.stderr)
	}
	return db
}

func TestEnvPrintsVariables(t *testing.T) {
	db := envDB(t)
	assert.Equal(t, outcome{"WEB_PORT=18301\nAPI_PORT=18302\n", "", 0}, portfor(t, db, "env", "web", "api", "web"))
	assert.Equal(t, outcome{"API_PORT=18302\nWEB_PORT=18301\n", "", 0}, portfor(t, db, "env"), "every name, sorted")
	assert.Equal(t, outcome{"export APP_WEB_PORT=18301\nexport HTTP=18302\n", "", 0},
		portfor(t, db, "env", "--format", "sh", "web", "--prefix", "APP_", "--var", "api=HTTP", "api"))
	o := portfor(t, db, "env", "--format", "json")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Equal(t, "{\n  \"API_PORT\": 18302,\n  \"WEB_PORT\": 18301\n}\n", o.stdout)
	var m map[string]int
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &m))
	assert.Equal(t, outcome{"{}\n", "", 0}, portfor(t, newDB(t), "env", "--format", "json"))

	// Names become identifiers; new names are assigned as forward assigns.
	p := freePort(t)
	o = portfor(t, db, "env", "web", "my-service.v2", fmt.Sprintf("3d=%d", p))
	require.Equal(t, 0, o.code, o.stderr)
	assert.Regexp(t, fmt.Sprintf(`^WEB_PORT=18301\nMY_SERVICE_V2_PORT=\d+\n_3D_PORT=%d\n$`, p), o.stdout)
	assert.Equal(t, fmt.Sprintf("%d\n", p), portfor(t, db, "get", "3d").stdout)
	o = portfor(t, db, "env", "api", "18302")
	assert.Equal(t, outcome{"API_PORT=18302\n", "", 0}, o, "NAME PORT, as forward reads it")
	o = portfor(t, db, "env", "web=18999")
	assert.Equal(t, outcome{"WEB_PORT=18301\n", "portfor: web keeps 18301 (asked 18999); 'portfor move web 18999' changes it\n", 0}, o)
}

func TestEnvUsageErrors(t *testing.T) {
	db := envDB(t)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"web-1", "web_1"}, "web-1 and web_1 are both WEB_1_PORT: --var NAME=VAR names one of them otherwise"},
		{[]string{"--var", "web=X", "--var", "api=X", "web", "api"}, "web and api are both X: --var NAME=VAR names one of them otherwise"},
		{[]string{"--var", "db=X", "web"}, "--var db=X: db is not among the names"},
		{[]string{"--var", "web=1X", "web"}, `invalid --var "web=1X": "1X" is no variable name (letters, digits and _, not starting with a digit)`},
		{[]string{"--var", "web", "web"}, `invalid --var "web": want NAME=VAR`},
		{[]string{"--prefix", "A-", "web"}, `invalid --prefix "A-": want letters, digits and _, not starting with a digit`},
		{[]string{"--format", "yaml"}, `unknown --format "yaml": want dotenv, sh or json`},
		{[]string{"--format", "sh", "--write", ".env"}, "--write writes a dotenv file: --format sh does not go with it"},
		{[]string{"web=8o"}, `invalid port "8o" after web=: want a number from 1 to 65535`},
	} {
		o := portfor(t, db, append([]string{"env"}, tc.args...)...)
		assert.Equal(t, outcome{"", "portfor: " + tc.stderr + " (try 'portfor env --help')\n", 2}, o, "%q", tc.args)
	}
	// In the registry, a name of which another's variable is a rename.
	require.Equal(t, 0, portfor(t, db, "bind", "www", "18303").code)
	o := portfor(t, db, "env", "--var", "www=WEB_PORT")
	assert.Equal(t, outcome{"", "portfor: web and www are both WEB_PORT: --var NAME=VAR names one of them otherwise (try 'portfor env --help')\n", 2}, o)
}

// writeEnv runs env --write FILE args... and wants it to succeed silently.
func writeEnv(t *testing.T, db, file string, args ...string) {
	t.Helper()
	o := portfor(t, db, append([]string{"env", "--write", file}, args...)...)
	require.Equal(t, outcome{"", "", 0}, o)
}

func TestEnvWriteMergesAndKeepsTheRest(t *testing.T) {
	db := envDB(t)
	file := filepath.Join(t.TempDir(), ".env")
	before := "# app settings\r\n\r\nexport WEB_PORT=\"1\"   # the web server\r\nNAME='my app'\r\nMULTI=\"a\r\nAPI_PORT=7\r\n\"\r\n"
	require.NoError(t, os.WriteFile(file, []byte(before), 0o640))
	writeEnv(t, db, file, "web", "api")
	want := "# app settings\r\n\r\nexport WEB_PORT=\"18301\"   # the web server\r\nNAME='my app'\r\nMULTI=\"a\r\nAPI_PORT=7\r\n\"\r\nAPI_PORT=18302\r\n"
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, want, string(b), "only the values change; the line inside MULTI is no binding")
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "the mode is kept")

	// Twice: nothing changes, not even the modification time.
	old := fi.ModTime().Add(-time.Hour)
	require.NoError(t, os.Chtimes(file, old, old))
	writeEnv(t, db, file, "web", "api")
	fi2, err := os.Stat(file)
	require.NoError(t, err)
	assert.True(t, fi2.ModTime().Equal(old), "not rewritten")
	b, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, want, string(b))
	entries, err := os.ReadDir(filepath.Dir(file))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left")

	// Missing: created 0644, whatever the umask; all names without NAME.
	fresh := filepath.Join(t.TempDir(), "new.env")
	writeEnv(t, db, fresh)
	b, err = os.ReadFile(fresh)
	require.NoError(t, err)
	assert.Equal(t, "API_PORT=18302\nWEB_PORT=18301\n", string(b))
	fi, err = os.Stat(fresh)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	}
}

func TestEnvWriteRefusesWhatItShouldNotWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("links and owners are Unix matters here")
	}
	db := envDB(t)
	dir := t.TempDir()
	o := portfor(t, db, "env", "--write", dir, "web")
	assert.Equal(t, 1, o.code)
	assert.Equal(t, fmt.Sprintf("portfor: refusing to write %s: not a regular file\n", dir), o.stderr)

	// A link of the user's own to a file of theirs: the file is updated
	// and the link stays.
	real := filepath.Join(dir, "real.env")
	require.NoError(t, os.WriteFile(real, []byte("A=1\n"), 0o600))
	link := filepath.Join(dir, "link.env")
	require.NoError(t, os.Symlink(real, link))
	writeEnv(t, db, link, "web")
	b, err := os.ReadFile(real)
	require.NoError(t, err)
	assert.Equal(t, "A=1\nWEB_PORT=18301\n", string(b))
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.True(t, fi.Mode()&os.ModeSymlink != 0, "the link is kept")

	dangling := filepath.Join(dir, "dangling.env")
	require.NoError(t, os.Symlink(filepath.Join(dir, "nothing"), dangling))
	o = portfor(t, db, "env", "--write", dangling, "web")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "a symbolic link to nothing")
	_, err = os.Lstat(filepath.Join(dir, "nothing"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing created through the link")

	// A link to another user's file (needs root to make one).
	if os.Geteuid() != 0 {
		t.Log("not root: the link to another user's file is not tested")
		return
	}
	theirs := filepath.Join(dir, "theirs.env")
	require.NoError(t, os.WriteFile(theirs, []byte("A=1\n"), 0o666))
	require.NoError(t, os.Chown(theirs, 65534, 65534))
	toTheirs := filepath.Join(dir, "to-theirs.env")
	require.NoError(t, os.Symlink(theirs, toTheirs))
	o = portfor(t, db, "env", "--write", toTheirs, "web")
	assert.Equal(t, outcome{"", fmt.Sprintf("portfor: refusing to write %s: it is a link to %s, which belongs to uid 65534\n", toTheirs, theirs), 1}, o)
	b, err = os.ReadFile(theirs)
	require.NoError(t, err)
	assert.Equal(t, "A=1\n", string(b))
}

// What --write produced reads back right with python-dotenv and with bash.
func TestEnvWriteReadsBackWithRealParsers(t *testing.T) {
	db := envDB(t)
	file := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(file, []byte("# c\nexport WEB_PORT='1' # note\nOTHER=\"x y\"\n"), 0o600))
	writeEnv(t, db, file, "web", "api")

	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import dotenv").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-dotenv is missing (.ci/run installs it): %v", err)
		}
		t.Skipf("needs Debian's python3-dotenv (apt-get install python3-dotenv): %v", err)
	}
	out, err := exec.Command(python, "-c", "import sys, json, dotenv; print(json.dumps(dotenv.dotenv_values(sys.argv[1])))", file).Output()
	require.NoError(t, err)
	var got map[string]string
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, map[string]string{"WEB_PORT": "18301", "API_PORT": "18302", "OTHER": "x y"}, got)

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("no bash: %v", err)
	}
	out, err = exec.Command(bash, "-c", `set -a; . "$1"; echo "$WEB_PORT $API_PORT $OTHER"`, "bash", file).Output()
	require.NoError(t, err)
	assert.Equal(t, "18301 18302 x y\n", string(out))
	out, err = exec.Command(bash, "-c", `eval "$1"; echo "$WEB_PORT"`, "bash", portfor(t, db, "env", "--format", "sh").stdout).Output()
	require.NoError(t, err)
	assert.Equal(t, "18301\n", string(out))
	assert.False(t, strings.Contains(string(out), "export"))
}
