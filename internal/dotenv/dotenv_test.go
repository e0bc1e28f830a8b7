package dotenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seeds are files python-dotenv reads in unusual ways; FuzzMerge starts
// from them and TestParseAgreesWithPythonDotenv checks Parse on each.
var seeds = []string{
	"",
	"WEB_PORT=1\n",
	"# comment\n\nexport WEB_PORT=\"1\" # note\r\nA=b\r\n",
	"WEB_PORT='1'\nAPI_PORT = 2   # spaced\n",
	"A=\"multi\nWEB_PORT=9\nline\"\nWEB_PORT=1",
	"A='unterminated\nWEB_PORT=1\n",
	"A=\"x\" junk\nWEB_PORT=\"1\" trailing\n",
	"WEB_PORT\nWEB_PORT=\n",
	"A='it\\'s'\nB=\"a\\\"b\\n\"\nC='x\\'\n",
	"WEB_PORT=   # only a comment\n",
	"'WEB_PORT'=1\n=bad\n#WEB_PORT=2\n  export  WEB_PORT=3\n",
	"exportWEB_PORT=1\nexport=2\n",
	"A=1\rWEB_PORT=2\r",
	"WEB_PORT=1 #c\tx\nWEB_PORT=2\n",
	"B=\"${HOME}\"\n",
}

func values(bs []Binding) map[string]any {
	m := map[string]any{}
	for _, b := range bs {
		if b.HasValue {
			m[b.Key] = b.Value
		} else {
			m[b.Key] = nil
		}
	}
	return m
}

func TestParse(t *testing.T) {
	bs := Parse([]byte(seeds[4]))
	require.Len(t, bs, 2)
	assert.Equal(t, Binding{Key: "A", Value: "multi\nWEB_PORT=9\nline", HasValue: true, Quote: '"', Start: 2, End: 25}, bs[0])
	assert.Equal(t, "1", bs[1].Value)
	bs = Parse([]byte(seeds[2]))
	require.Len(t, bs, 2)
	assert.True(t, bs[0].Export)
	assert.Equal(t, `"1"`, seeds[2][bs[0].Start:bs[0].End])
	assert.Equal(t, map[string]any{"A": "it's", "B": "a\"b\n", "C": "x\\"}, values(Parse([]byte(seeds[8]))))
	assert.Equal(t, map[string]any{"WEB_PORT": "# only a comment"}, values(Parse([]byte(seeds[9]))), "python-dotenv's reading")
}

// TestParseAgreesWithPythonDotenv reads every seed with Debian's
// python3-dotenv (without interpolation, as Parse reads) and wants the
// same values.
func TestParseAgreesWithPythonDotenv(t *testing.T) {
	python := pythonDotenv(t)
	dir := t.TempDir()
	var paths []string
	for i, s := range seeds {
		p := filepath.Join(dir, strconv.Itoa(i)+".env")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		paths = append(paths, p)
	}
	// One process for every file: the paths are its arguments.
	out, err := exec.Command(python, append([]string{"-c", `import sys, json, dotenv
print(json.dumps([dotenv.dotenv_values(p, interpolate=False) for p in sys.argv[1:]]))`}, paths...)...).Output()
	require.NoError(t, err)
	var want []map[string]any
	require.NoError(t, json.Unmarshal(out, &want))
	for i, s := range seeds {
		got := values(Parse([]byte(s)))
		// python reads with universal newlines: \r\n and \r are \n.
		for k, v := range got {
			if v, ok := v.(string); ok {
				got[k] = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n")
			}
		}
		assert.Equal(t, want[i], got, "seed %d: %q", i, s)
	}
}

// pythonDotenv returns the python3 that has the dotenv module, skipping
// the test without one, except under CI.
func pythonDotenv(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import dotenv").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-dotenv is missing (.ci/run installs it): %v", err)
		}
		t.Skipf("needs Debian's python3-dotenv (apt-get install python3-dotenv): %v", err)
	}
	return python
}

func TestIdentifierAndQuote(t *testing.T) {
	for in, want := range map[string]string{"web": "WEB", "my-service": "MY_SERVICE", "3d": "_3D", "a.b/c": "A_B_C", "Ünï": "_N_", "": "_"} {
		assert.Equal(t, want, Identifier(in), "%q", in)
		assert.True(t, IsIdentifier(Identifier(in)))
	}
	assert.False(t, IsIdentifier("1A"))
	assert.False(t, IsIdentifier(""))
	for in, want := range map[string]string{"3001": "3001", "": "", "a b": "'a b'", "it's": `"it's"`, "a\nb": `"a\nb"`, `c:\x`: `"c:\\x"`} {
		assert.Equal(t, want, Quote(in), "%q", in)
		assert.Equal(t, map[string]any{"K": in}, values(Parse([]byte("K="+Quote(in)+"\n"))), "%q reads back", in)
	}
	assert.Equal(t, "3001", ShellQuote("3001"))
	assert.Equal(t, `'it'\''s'`, ShellQuote("it's"))
	assert.Equal(t, "''", ShellQuote(""))
}

func TestMerge(t *testing.T) {
	vars := []Var{{"WEB_PORT", "3001"}, {"API_PORT", "4000"}}
	for _, tc := range []struct{ in, want string }{
		{"", "WEB_PORT=3001\nAPI_PORT=4000\n"},
		{"A=b", "A=b\nWEB_PORT=3001\nAPI_PORT=4000\n"},
		{"A=b\r\nexport WEB_PORT='1' # x\r\n", "A=b\r\nexport WEB_PORT='3001' # x\r\nAPI_PORT=4000\r\n"},
		{"WEB_PORT=\"1\"\nAPI_PORT = 9 # c\nWEB_PORT=2\n", "WEB_PORT=\"3001\"\nAPI_PORT = 4000 # c\nWEB_PORT=3001\n"},
		{"A=\"x\nWEB_PORT=1\n\"\n", "A=\"x\nWEB_PORT=1\n\"\nWEB_PORT=3001\nAPI_PORT=4000\n"},
		{"WEB_PORT\n", "WEB_PORT\nWEB_PORT=3001\nAPI_PORT=4000\n"},
		{"A=1\rB=2\r", "A=1\rB=2\rWEB_PORT=3001\rAPI_PORT=4000\r"},
	} {
		out, _ := Merge([]byte(tc.in), vars)
		assert.Equal(t, tc.want, string(out), "%q", tc.in)
		again, changed := Merge(out, vars)
		assert.Equal(t, string(out), string(again))
		assert.Empty(t, changed)
	}
	_, changed := Merge([]byte("API_PORT=4000\nWEB_PORT=1\n"), vars)
	assert.Equal(t, []string{"WEB_PORT"}, changed)
}

// FuzzMerge merges ports into arbitrary files: the variables then read
// back as set, every other binding reads as before, a second merge changes
// nothing, and everything but the values is kept.
func FuzzMerge(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), uint16(3001))
	}
	f.Fuzz(func(t *testing.T, src []byte, port uint16) {
		vars := []Var{{"WEB_PORT", strconv.Itoa(int(port))}, {"A", "4000"}}
		owned := map[string]string{"WEB_PORT": vars[0].Value, "A": "4000"}
		out, changed := Merge(src, vars)
		after := Parse(out)
		seen := map[string]bool{}
		var others []Binding
		for _, b := range after {
			if v, ok := owned[b.Key]; ok && b.HasValue {
				seen[b.Key] = true
				if b.Value != v {
					t.Fatalf("%q → %q: %s is %q", src, out, b.Key, b.Value)
				}
			} else {
				others = append(others, Binding{Key: b.Key, Value: b.Value, HasValue: b.HasValue, Export: b.Export})
			}
		}
		if !seen["WEB_PORT"] || !seen["A"] {
			t.Fatalf("%q → %q: a variable is missing", src, out)
		}
		var before []Binding
		for _, b := range Parse(src) {
			if _, ok := owned[b.Key]; !ok || !b.HasValue {
				before = append(before, Binding{Key: b.Key, Value: b.Value, HasValue: b.HasValue, Export: b.Export})
			}
		}
		if len(before) != len(others) {
			t.Fatalf("%q → %q: other bindings changed: %v, now %v", src, out, before, others)
		}
		for i := range before {
			if before[i] != others[i] {
				t.Fatalf("%q → %q: other bindings changed: %v, now %v", src, out, before, others)
			}
		}
		again, changed2 := Merge(out, vars)
		if string(again) != string(out) || len(changed2) != 0 {
			t.Fatalf("%q: a second merge changed %v: %q → %q", src, changed2, out, again)
		}
		if len(changed) == 0 && string(out) != string(src) {
			t.Fatalf("%q: no change reported, but %q", src, out)
		}
	})
}
