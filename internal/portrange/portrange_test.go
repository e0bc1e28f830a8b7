package portrange

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want List
		err  string
	}{
		{"8000", List{{8000, 8000}}, ""},
		{"8000-8100", List{{8000, 8100}}, ""},
		{"8000-8100,8005,9000-9010", List{{8000, 8100}, {8005, 8005}, {9000, 9010}}, ""},
		{" 9000 , 1-2 ", List{{9000, 9000}, {1, 2}}, ""},
		{"65535", List{{65535, 65535}}, ""},
		{"", nil, `invalid port list "": empty`},
		{"  ", nil, "empty"},
		{"0", nil, `"0" is not a port (1-65535)`},
		{"65536", nil, `"65536" is not a port`},
		{"8000-", nil, `"" is not a port`},
		{"-8000", nil, `"" is not a port`},
		{"9000-8000", nil, `range "9000-8000" runs backwards`},
		{"80,,90", nil, `"" is not a port`},
		{"+80", nil, `"+80" is not a port`},
		{"8o", nil, `"8o" is not a port`},
		{"1-2-3", nil, `"2-3" is not a port`},
		{"0x50", nil, "not a port"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err != "" {
			require.Error(t, err, "Parse(%q)", tt.in)
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Contains(t, err.Error(), tt.err, "Parse(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "Parse(%q)", tt.in)
		assert.Equal(t, tt.want, got, "Parse(%q)", tt.in)
	}
}

func TestListMethods(t *testing.T) {
	l, err := Parse("9000,8000-8002")
	require.NoError(t, err)
	assert.Equal(t, "9000,8000-8002", l.String())
	assert.True(t, l.Contains(8001))
	assert.False(t, l.Contains(8003))
	var got []int
	l.Ports(func(p int) bool { got = append(got, p); return p != 8001 })
	assert.Equal(t, []int{9000, 8000, 8001}, got)
	assert.Equal(t, 3, l[1].Len())
}

func TestKernelFormats(t *testing.T) {
	r, err := parseKernelRange("32768\t60999\n")
	require.NoError(t, err)
	assert.Equal(t, Range{32768, 60999}, r)
	for _, bad := range []string{"", "1", "1 2 3", "60999 32768", "x 5"} {
		_, err := parseKernelRange(bad)
		assert.ErrorIs(t, err, ErrSyntax, "parseKernelRange(%q)", bad)
	}
	l, err := parseKernelList("\n")
	require.NoError(t, err)
	assert.Empty(t, l)
	l, err = parseKernelList("8000-8010,9000\n")
	require.NoError(t, err)
	assert.Equal(t, List{{8000, 8010}, {9000, 9000}}, l)
	_, err = parseKernelList("8000-")
	assert.ErrorIs(t, err, ErrSyntax)
}

func TestOSRanges(t *testing.T) {
	r, err := Ephemeral()
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, r.First, 1)
	assert.LessOrEqual(t, r.Last, MaxPort)
	assert.LessOrEqual(t, r.First, r.Last)
	res, err := Reserved()
	require.NoError(t, err)
	for _, rr := range res {
		assert.LessOrEqual(t, rr.First, rr.Last)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"8000", "8000-8100,8005,9000-9010", " 1 - 2 ", "", "0", "65536", "9-1", ",", "1,,2", "-", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		if len(l) == 0 {
			t.Fatalf("Parse(%q) = empty list, nil error", s)
		}
		for _, r := range l {
			if r.First < 1 || r.Last > MaxPort || r.First > r.Last {
				t.Fatalf("Parse(%q) gave bad range %v", s, r)
			}
		}
		again, err := Parse(l.String())
		if err != nil || again.String() != l.String() {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}
