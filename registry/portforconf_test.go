package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

type bindings = []registry.PortForBinding

func pf(name string, port, line int) registry.PortForBinding {
	return registry.PortForBinding{Name: name, Port: port, Line: line}
}

// portForCases are config files and what port-for sees in them: the
// bindings, or "error: line N" for a file port-for cannot read.
var portForCases = []struct {
	name, conf string
	want       bindings
	err        string // a substring of the error; "" for none
}{
	{"empty", "", nil, ""},
	{"as port-for writes it", "[DEFAULT]\nweb = 8001\napi = 8002\n\n", bindings{pf("web", 8001, 2), pf("api", 8002, 3)}, ""},
	{"colon and no spaces", "[DEFAULT]\nweb:8001\napi=8002\n", bindings{pf("web", 8001, 2), pf("api", 8002, 3)}, ""},
	{"names are lower-cased", "[DEFAULT]\nWeb = 8001\n", bindings{pf("web", 8001, 2)}, ""},
	{"comments and blank lines", "# mine\n; also\n[DEFAULT]\n  # indented comment\n\nweb = 8001\n", bindings{pf("web", 8001, 6)}, ""},
	{"no inline comments", "[DEFAULT]\nweb = 8001 # no\n", nil, `line 2: "web": value "8001 # no" is not a port number`},
	{"first delimiter splits", "[DEFAULT]\na:b = 1\n", nil, `line 2: "a": value "b = 1" is not a port number`},
	{"spaces in names", "[DEFAULT]\nmy app = 8003\n", bindings{pf("my app", 8003, 2)}, ""},
	{"CRLF and CR", "[DEFAULT]\r\nweb = 8001\r\napi = 8002\rdb = 8003", bindings{pf("web", 8001, 2), pf("api", 8002, 3), pf("db", 8003, 4)}, ""},
	{"other sections ignored", "[DEFAULT]\nweb = 8001\n[other]\nweb = 9\nx = y\n", bindings{pf("web", 8001, 2)}, ""},
	{"DEFAULT twice", "[DEFAULT]\nweb = 8001\n[x]\n[DEFAULT]\napi = 8002\n", bindings{pf("web", 8001, 2), pf("api", 8002, 5)}, ""},
	{"header ends at the last ]", "[DEFAULT] trailing\nweb = 1\n[a]b]\n", bindings{pf("web", 1, 2)}, ""},
	{"[] = is an option", "[DEFAULT]\n[] = 5\n", bindings{pf("[]", 5, 2)}, ""},
	{"python int", "[DEFAULT]\na = 08001\nb = +8_001\nc = -1\nd = 70000\ne = 0\n", bindings{pf("a", 8001, 2), pf("b", 8001, 3), pf("c", -1, 4), pf("d", 70000, 5), pf("e", 0, 6)}, ""},
	{"blank lines then a continuation", "[DEFAULT]\nweb = 8001\n\n  9\n", nil, `line 2: "web": value "8001\n\n9" is not a port number (a line indented under it continues the value)`},
	{"blank lines then an option", "[DEFAULT]\nweb = 8001\n\n\napi = 2\n", bindings{pf("web", 8001, 2), pf("api", 2, 5)}, ""},
	{"indented option lines", "[DEFAULT]\n  web = 8001\n  api = 8002\n", bindings{pf("web", 8001, 2), pf("api", 8002, 3)}, ""},
	{"continuation", "[DEFAULT]\nweb = 8001\n  8002\n", nil, `line 2: "web": value "8001\n8002" is not a port number`},
	{"duplicate", "[DEFAULT]\nweb = 1\nWEB = 2\n", nil, `line 3: duplicate name "web" in [DEFAULT] (first on line 2)`},
	{"duplicate across DEFAULTs", "[DEFAULT]\nweb = 1\n[DEFAULT]\nweb = 2\n", nil, "line 4: duplicate name"},
	{"duplicate elsewhere", "[DEFAULT]\n[x]\na = 1\na = 1\n", nil, `line 4: duplicate name "a" in [x]`},
	{"duplicate section", "[x]\n[DEFAULT]\n[x]\n", nil, "line 3: section [x] given twice"},
	{"no header", "web = 8001\n", nil, `line 1: "web = 8001" before any section header`},
	{"bogus line", "[DEFAULT]\nweb 8001\n", nil, `line 2: "web 8001" is neither a section header nor name = port`},
	{"no name", "[DEFAULT]\n= 8001\n", nil, `line 2: no name before "="`},
	{"empty value", "[DEFAULT]\nweb =\n", nil, `line 2: "web": value "" is not a port number`},
	{"interpolation", "[DEFAULT]\nweb = 8001\napi = %(web)s\n", nil, "('%' interpolation is not supported)"},
	{"byte order mark", "\uFEFF[DEFAULT]\nweb = 8001\n", nil, "line 1: starts with a byte order mark"},
	{"bad UTF-8", "[DEFAULT]\nweb\xff = 8001\n", nil, "line 2: not valid UTF-8"},
	{"huge number", "[DEFAULT]\nweb = 99999999999999999999\n", nil, "is not a port number"},
}

func TestParsePortForConfig(t *testing.T) {
	for _, tc := range portForCases {
		got, err := registry.ParsePortForConfig(strings.NewReader(tc.conf))
		if tc.err == "" {
			require.NoError(t, err, tc.name)
			assert.Equal(t, tc.want, got, tc.name)
			continue
		}
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, registry.ErrPortForConfig, tc.name)
		var pe *registry.PortForConfigError
		require.ErrorAs(t, err, &pe, tc.name)
		assert.Contains(t, err.Error(), tc.err, tc.name)
		assert.Nil(t, got, tc.name)
	}
}

func TestParsePortForConfigReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := registry.ParsePortForConfig(iotest.ErrReader(boom))
	assert.ErrorIs(t, err, boom)
	assert.ErrorIs(t, err, registry.ErrPortForConfig)
	assert.EqualError(t, err, "read: boom")
}

// python3PortFor returns /usr/bin/python3 when it can import port_for
// (Debian's python3-port-for); otherwise the test skips, except under CI,
// which installs it (.ci/run).
func python3PortFor(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import port_for").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have python3-port-for (.ci/run installs it): %v: %s", err, out)
		}
		t.Skipf("%s cannot import port_for (apt-get install python3-port-for): %v", py, err)
	}
	return py
}

// portForReads is what port-for's own PortStore.bound_ports() makes of a
// file: its bindings as JSON, or "error".
const portForReads = `
import json, sys, port_for
try:
    print(json.dumps(port_for.PortStore(config_filename=sys.argv[1]).bound_ports()))
except Exception as e:
    print("error")
`

// refusedOnPurpose are the cases port-for reads and portfor refuses, and why.
var refusedOnPurpose = map[string]string{
	"interpolation": "configparser's %(name)s interpolation, which port-for never writes",
	"huge number":   "numbers no port is near",
}

// Every case reads as port-for itself reads it: the same bindings, or an
// error where port-for fails.
func TestParsePortForConfigAgreesWithPortFor(t *testing.T) {
	py := python3PortFor(t)
	dir := t.TempDir()
	for i, tc := range portForCases {
		path := filepath.Join(dir, fmt.Sprintf("%d.conf", i))
		require.NoError(t, os.WriteFile(path, []byte(tc.conf), 0o600))
		cmd := exec.Command(py, "-c", portForReads, path)
		cmd.Env = append(os.Environ(), "PYTHONUTF8=1")
		out, err := cmd.Output()
		require.NoError(t, err, tc.name)
		got := strings.TrimSpace(string(out))
		if reason, ok := refusedOnPurpose[tc.name]; ok {
			assert.NotEqual(t, "error", got, "%s: port-for reads it, but portfor refuses %s", tc.name, reason)
			continue
		}
		if tc.err != "" {
			assert.Equal(t, "error", got, "%s: port-for reads what portfor refuses", tc.name)
			continue
		}
		var pairs [][2]any
		require.NoError(t, json.Unmarshal([]byte(got), &pairs), tc.name)
		want := make([][2]any, len(tc.want))
		for j, b := range tc.want {
			want[j] = [2]any{b.Name, float64(b.Port)}
		}
		assert.Equal(t, want, pairs, tc.name)
	}
}

// What port-for writes through its own API parses to what it was told.
func TestParsePortForConfigOfPortForsOwnFile(t *testing.T) {
	py := python3PortFor(t)
	path := filepath.Join(t.TempDir(), "port-for.conf")
	out, err := exec.Command(py, "-c", `
import sys, port_for
s = port_for.PortStore(config_filename=sys.argv[1])
s.bind_port("web", 18001)
s.bind_port("Api", "18002")
s.bind_port("my app", 18003)
s.bind_port("db", 18004)
s.unbind_port("db")
print(s.bind_port("auto"))
`, path).Output()
	require.NoError(t, err)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	got, err := registry.ParsePortForConfig(f)
	require.NoError(t, err)
	var auto int
	_, err = fmt.Sscan(string(out), &auto)
	require.NoError(t, err)
	assert.Equal(t, bindings{pf("web", 18001, 2), pf("api", 18002, 3), pf("my app", 18003, 4), pf("auto", auto, 5)}, got)
}

var lineRE = regexp.MustCompile(`^line [1-9][0-9]*: `)

// FuzzParsePortForConfig: whatever the input, the parser returns
// bindings with distinct non-empty lower-case names that read back the
// same when written as port-for writes them, or an error wrapping
// ErrPortForConfig that names a line. The seeds are portForCases.
func FuzzParsePortForConfig(f *testing.F) {
	for _, tc := range portForCases {
		f.Add(tc.conf)
	}
	f.Fuzz(func(t *testing.T, conf string) {
		got, err := registry.ParsePortForConfig(strings.NewReader(conf))
		if err != nil {
			if !errors.Is(err, registry.ErrPortForConfig) || !lineRE.MatchString(err.Error()) {
				t.Fatalf("%q: error %q", conf, err)
			}
			return
		}
		var b strings.Builder
		b.WriteString("[DEFAULT]\n")
		seen := map[string]bool{}
		for _, p := range got {
			if p.Name == "" || seen[p.Name] || strings.ToLower(p.Name) != p.Name || p.Line < 1 {
				t.Fatalf("%q: binding %+v", conf, p)
			}
			seen[p.Name] = true
			fmt.Fprintf(&b, "%s = %d\n", p.Name, p.Port)
		}
		again, err := registry.ParsePortForConfig(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("%q: written back as %q: %v", conf, b.String(), err)
		}
		if len(again) != len(got) {
			t.Fatalf("%q: %v, written back %v", conf, got, again)
		}
		for i := range got {
			if again[i].Name != got[i].Name || again[i].Port != got[i].Port {
				t.Fatalf("%q: %v, written back %v", conf, got, again)
			}
		}
	})
}
