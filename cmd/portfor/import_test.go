package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// portForFile has Debian's port-for write its config file through its own
// API, running script with the file's path as sys.argv[1] (s is the
// PortStore); it returns the path and what the script printed. It skips
// when /usr/bin/python3 cannot import port_for, except under CI, which
// installs python3-port-for (.ci/run).
func portForFile(t *testing.T, script string) (path, out string) {
	t.Helper()
	const py = "/usr/bin/python3"
	if o, err := exec.Command(py, "-c", "import port_for").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have python3-port-for (.ci/run installs it): %v: %s", err, o)
		}
		t.Skipf("%s cannot import port_for (apt-get install python3-port-for): %v", py, err)
	}
	path = filepath.Join(t.TempDir(), "port-for.conf")
	o, err := exec.Command(py, "-c", "import sys, port_for\ns = port_for.PortStore(config_filename=sys.argv[1])\n"+script, path).CombinedOutput()
	require.NoError(t, err, "%s", o)
	return path, string(o)
}

func TestImportPortForsOwnFile(t *testing.T) {
	path, out := portForFile(t, `
s.bind_port("web", 18001)
s.bind_port("Api", 18002)
s.bind_port("db", 18003)
s.bind_port("my app", 18004)
s.bind_port("cache", 18005)
print(s.bind_port("auto"))
`)
	var auto int
	_, err := fmt.Sscan(out, &auto)
	require.NoError(t, err)
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "bind", "db", "18013").code)
	require.Equal(t, 0, portfor(t, db, "bind", "other", "18005").code)
	require.Equal(t, 0, portfor(t, db, "bind", "web", "18001").code)
	want := fmt.Sprintf(`kept web 18001
bound api 18002
conflict db 18003: db already holds 18013
conflict "my app" 18004: not a portfor name: contains whitespace
conflict cache 18005: port 18005 is other's
bound auto %d
`, auto)

	o := portfor(t, db, "import", "--dry-run", "port-for", path)
	assert.Equal(t, outcome{want, fmt.Sprintf("portfor: import port-for %s: 3 of 6 names conflict (dry run: nothing was written)\n", path), 1}, o)
	assert.Equal(t, 1, portfor(t, db, "get", "api").code, "a dry run binds nothing")

	o = portfor(t, db, "import", "port-for", path)
	assert.Equal(t, outcome{want, fmt.Sprintf("portfor: import port-for %s: 3 of 6 names conflict\n", path), 1}, o)
	assert.Equal(t, outcome{fmt.Sprintf("18002\n%d\n", auto), "", 0}, portfor(t, db, "get", "api", "auto"))

	// Once the conflicts are settled, everything is kept: exit 0.
	fixed := filepath.Join(t.TempDir(), "fixed.conf")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "db ") && !strings.HasPrefix(l, "my app ") && !strings.HasPrefix(l, "cache ") {
			keep = append(keep, l)
		}
	}
	require.NoError(t, os.WriteFile(fixed, []byte(strings.Join(keep, "\n")), 0o600))
	o = portfor(t, db, "import", "port-for", fixed, "-n")
	assert.Equal(t, outcome{fmt.Sprintf("kept web 18001\nkept api 18002\nkept auto %d\n", auto), fmt.Sprintf("portfor: import port-for %s: dry run: nothing was written\n", fixed), 0}, o)
	o = portfor(t, db, "import", "port-for", fixed)
	assert.Equal(t, outcome{fmt.Sprintf("kept web 18001\nkept api 18002\nkept auto %d\n", auto), "", 0}, o)
}

func TestImportUsageAndBadFiles(t *testing.T) {
	db := newDB(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("[DEFAULT]\nweb = 1\nWeb = 2\n"), 0o600))
	missing := filepath.Join(dir, "missing.conf")
	for _, tt := range []struct {
		args []string
		want outcome
	}{
		{[]string{"import"}, outcome{"", "portfor: missing SOURCE (try 'portfor import --help')\n", 2}},
		{[]string{"import", "pip"}, outcome{"", `portfor: unknown source "pip": portfor imports from port-for (try 'portfor import --help')` + "\n", 2}},
		{[]string{"import", "port-for", bad, "x"}, outcome{"", `portfor: unexpected argument "x" after SOURCE FILE (try 'portfor import --help')` + "\n", 2}},
		{[]string{"import", "port-for", missing}, outcome{"", "portfor: import port-for: open " + missing + ": no such file or directory\n", 1}},
		{[]string{"import", "port-for", bad}, outcome{"", "portfor: import port-for " + bad + `: line 3: duplicate name "web" in [DEFAULT] (first on line 2)` + "\n", 1}},
	} {
		assert.Equal(t, tt.want, portfor(t, db, tt.args...), "%q", tt.args)
	}
	_, err := os.Stat(db)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing was written")
}

func TestImportEmptyFile(t *testing.T) {
	db := newDB(t)
	empty := filepath.Join(t.TempDir(), "port-for.conf")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	assert.Equal(t, outcome{"", "", 0}, portfor(t, db, "import", "port-for", empty))
}

func TestURL(t *testing.T) {
	db := newDB(t)
	require.Equal(t, 0, portfor(t, db, "bind", "web", "18080").code)
	require.Equal(t, 0, portfor(t, db, "bind", "api/v2", "18081").code)
	for in, want := range map[string]string{
		"web":               "http://localhost:18080/",
		"web/":              "http://localhost:18080/",
		"web/health":        "http://localhost:18080/health",
		"web/a b/%2F?q=x y": "http://localhost:18080/a b/%2F?q=x y", // as given
		"web?q=1":           "http://localhost:18080/?q=1",
		"web/x#top":         "http://localhost:18080/x#top",
		"api/v2":            "http://localhost:18081/",
		"api/v2/status":     "http://localhost:18081/status",
	} {
		assert.Equal(t, outcome{want + "\n", "", 0}, portfor(t, db, "url", in), in)
	}
	assert.Equal(t, outcome{"", "portfor: url: \"nope\" is not a registered name\n", 1}, portfor(t, db, "url", "nope/health"))
	assert.Equal(t, outcome{"", "portfor: url: \"nope\" is not a registered name\n", 1}, portfor(t, db, "url", "nope"))
	assert.Equal(t, outcome{"", "portfor: url: invalid id \"a b\": contains whitespace\n", 2}, portfor(t, db, "url", "a b"))
	assert.Equal(t, outcome{"", "portfor: missing NAME (try 'portfor url --help')\n", 2}, portfor(t, db, "url"))
	assert.Equal(t, outcome{"", `portfor: unexpected argument "x" after NAME (try 'portfor url --help')` + "\n", 2}, portfor(t, db, "url", "web", "x"))
}
