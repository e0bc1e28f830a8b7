package activation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/portfor/portfor/internal/activation"
)

func TestParse(t *testing.T) {
	const me = 4242
	tests := []struct {
		pid, fds, names string
		want            []string
		err             string
	}{
		{"", "", "", nil, ""},
		{"", "2", "a:b", nil, ""}, // no LISTEN_PID: not for us
		{"4243", "2", "a:b", nil, ""},
		{"4242", "", "", nil, ""},
		{"4242", "0", "", nil, ""},
		{"4242", "1", "", []string{"unknown"}, ""},
		{"4242", "2", "", []string{"unknown", "unknown"}, ""},
		{"4242", "1", "portfor", []string{"portfor"}, ""},
		{"4242", "3", "a:b:c", []string{"a", "b", "c"}, ""},
		{"x", "1", "", nil, `LISTEN_PID="x": not a pid`},
		{"-1", "1", "", nil, "not a pid"},
		{"4242", "x", "", nil, `LISTEN_FDS="x": want a count`},
		{"4242", "-1", "", nil, "want a count"},
		{"4242", "65537", "", nil, "want a count"},
		{"4242", "99999999999999999999", "", nil, "want a count"},
		{"4242", "2", "a", nil, `names 1 descriptors, LISTEN_FDS=2`},
		{"4242", "1", "a:b", nil, `names 2 descriptors, LISTEN_FDS=1`},
		{"4242", "2", "a:", nil, `name 2 ("")`},
		{"4242", "1", "a\nb", nil, `name 1 ("a\nb")`},
		{"4242", "1", strings.Repeat("x", 256), nil, "want 1 to 255"},
	}
	for _, tt := range tests {
		got, err := activation.Parse(tt.pid, tt.fds, tt.names, me)
		if tt.err != "" {
			assert.ErrorIs(t, err, activation.ErrEnv, "%+v", tt)
			assert.ErrorContains(t, err, tt.err, "%+v", tt)
			assert.Nil(t, got)
			continue
		}
		assert.NoError(t, err, "%+v", tt)
		assert.Equal(t, tt.want, got, "%+v", tt)
	}
}

// FuzzParse checks that any environment parses to nothing, an error, or
// exactly LISTEN_FDS valid names; the seed corpus runs with go test.
func FuzzParse(f *testing.F) {
	for _, s := range [][3]string{
		{"", "", ""}, {"7", "1", ""}, {"7", "2", "a:b"}, {"7", "2", "a"}, {"7", "1", "a:b"}, {"8", "1", "a"},
		{"7", "0", ""}, {"7", "-1", ""}, {"7", "65536", ""}, {"7", "65537", ""}, {"7", "1", ":"}, {"7", "2", ":"},
		{"7", " 1", ""}, {"7", "1 ", ""}, {"+7", "+1", ""}, {"07", "01", "x"}, {"7", "1", "\x00"}, {"7", "1", "é"},
		{"7", "3", "a::b"}, {"0", "1", ""}, {"7", "0x1", ""}, {"9223372036854775808", "1", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pid, fds, names string) {
		got, err := activation.Parse(pid, fds, names, 7)
		if err != nil {
			if !errors.Is(err, activation.ErrEnv) || got != nil {
				t.Fatalf("Parse(%q, %q, %q) = %q, %v", pid, fds, names, got, err)
			}
			return
		}
		if got == nil {
			return
		}
		if len(got) == 0 || len(got) > activation.MaxFDs {
			t.Fatalf("Parse(%q, %q, %q): %d names", pid, fds, names, len(got))
		}
		if names != "" && strings.Join(got, ":") != names {
			t.Fatalf("Parse(%q, %q, %q) = %q: not the names given", pid, fds, names, got)
		}
		for _, n := range got {
			if n == "" || len(n) > 255 || strings.ContainsAny(n, ":\n\x00") {
				t.Fatalf("Parse(%q, %q, %q): bad name %q", pid, fds, names, n)
			}
		}
	})
}
