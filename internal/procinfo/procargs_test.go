package procinfo

import (
	"encoding/binary"
	"strings"
	"testing"
)

// procArgs builds a kern.procargs2 buffer: argc, path, padding, args, env.
func procArgs(argc int32, path string, pad int, args, env []string) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(argc))
	b = append(b, path...)
	b = append(b, make([]byte, 1+pad)...)
	for _, s := range append(args, env...) {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func TestParseProcArgs(t *testing.T) {
	env := []string{"HOME=/Users/ana", "TOKEN=secret"}
	long := strings.Repeat("x", 3000)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"typical", procArgs(3, "/usr/bin/python3", 7, []string{"python3", "-m", "http.server"}, env), "python3 -m http.server"},
		{"no padding", procArgs(2, "/bin/sleep", 0, []string{"sleep", "30"}, env), "sleep 30"},
		{"no environment", procArgs(1, "/a", 3, []string{"a"}, nil), "a"},
		{"empty argument kept", procArgs(3, "/bin/echo", 2, []string{"echo", "", "x"}, env), "echo  x"},
		{"spaces in arguments", procArgs(2, "/bin/sh", 1, []string{"sh", "a b"}, env), "sh a b"},
		{"argument cut by the end", procArgs(2, "/bin/sh", 1, []string{"sh", "-c"}, nil)[:4+len("/bin/sh")+2+len("sh")+1+1], "sh"},
		{"argc past the strings", procArgs(5, "/bin/sh", 1, []string{"sh"}, nil), "sh"},
		{"long", procArgs(3, "/bin/x", 1, []string{long, long, long}, env), (long + " " + long)[:maxCommand]},
		{"argc zero", procArgs(0, "/bin/sh", 1, []string{"sh"}, env), ""},
		{"argc negative", procArgs(-1, "/bin/sh", 1, []string{"sh"}, env), ""},
		{"path without NUL", append(binary.NativeEndian.AppendUint32(nil, 1), "/bin/sh"...), ""},
		{"short", []byte{1, 0}, ""},
		{"empty", nil, ""},
	} {
		if got := parseProcArgs(c.b); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func FuzzParseProcArgs(f *testing.F) {
	f.Add(procArgs(3, "/usr/bin/python3", 7, []string{"python3", "-m", "http.server"}, []string{"A=b"}))
	f.Add(procArgs(1, "", 0, []string{""}, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := parseProcArgs(b)
		if len(s) > maxCommand || strings.IndexByte(s, 0) >= 0 {
			t.Errorf("%q from %q", s, b)
		}
	})
}
