// Package portrange parses port lists such as "8000-8100,9000" and reads the
// port ranges the operating system keeps for itself: the ephemeral range it
// hands out to outgoing connections and, on Linux, ip_local_reserved_ports.
package portrange

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPort is the highest TCP or UDP port.
const MaxPort = 65535

// Range is an inclusive range of ports, First <= Last.
type Range struct {
	First, Last int
}

// Contains reports whether port lies in r.
func (r Range) Contains(port int) bool { return port >= r.First && port <= r.Last }

// Len returns how many ports r holds.
func (r Range) Len() int { return r.Last - r.First + 1 }

// String formats r as "First-Last", or "First" for a single port.
func (r Range) String() string {
	if r.First == r.Last {
		return strconv.Itoa(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// List is an ordered list of ranges, as written by the user: order is kept,
// so the first free port of "9000,8000-8100" is looked for at 9000 first.
type List []Range

// Contains reports whether any range of l holds port.
func (l List) Contains(port int) bool {
	for _, r := range l {
		if r.Contains(port) {
			return true
		}
	}
	return false
}

// Ports calls yield for every port of l in order, stopping when yield
// returns false. A port listed twice is yielded twice.
func (l List) Ports(yield func(int) bool) {
	for _, r := range l {
		for p := r.First; p <= r.Last; p++ {
			if !yield(p) {
				return
			}
		}
	}
}

// Len returns how many ports l holds, a port listed twice counted twice:
// the number of ports [List.Ports] yields.
func (l List) Len() int {
	n := 0
	for _, r := range l {
		n += r.Len()
	}
	return n
}

// At returns the i-th port of l in the order [List.Ports] yields them,
// counting from 0, or 0 when i is out of range.
func (l List) At(i int) int {
	if i < 0 {
		return 0
	}
	for _, r := range l {
		if i < r.Len() {
			return r.First + i
		}
		i -= r.Len()
	}
	return 0
}

// Index returns the position (as [List.At] counts) at which a search for
// port should start: that of port itself, or of the first port above it,
// in the first range whose last port is >= port. It returns 0 when no range
// reaches port. For a list in ascending order, that is the position of the
// first port >= port.
func (l List) Index(port int) int {
	i := 0
	for _, r := range l {
		if port <= r.Last {
			return i + max(0, port-r.First)
		}
		i += r.Len()
	}
	return 0
}

// Without returns l with the ports of cut taken out, in the same order: a
// range that cut splits becomes two. The result is never nil, and l is
// left as it was.
func (l List) Without(cut Range) List {
	out := make(List, 0, len(l)+1)
	for _, r := range l {
		if r.Last < cut.First || r.First > cut.Last {
			out = append(out, r)
			continue
		}
		if r.First < cut.First {
			out = append(out, Range{First: r.First, Last: cut.First - 1})
		}
		if r.Last > cut.Last {
			out = append(out, Range{First: cut.Last + 1, Last: r.Last})
		}
	}
	return out
}

// String formats l as Parse accepts it, e.g. "8000-8100,9000".
func (l List) String() string {
	parts := make([]string, len(l))
	for i, r := range l {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ErrSyntax is returned (wrapped in a [*ParseError]) for a malformed list.
var ErrSyntax = errors.New("invalid port list")

// ParseError is returned by [Parse]; it names the input and what is wrong with it.
type ParseError struct {
	Input string // the whole input
	Msg   string // what is wrong, e.g. `"70000" is not a port (1-65535)`
}

// Error returns a one-line message such as
// `invalid port list "8000-": "" is not a port (1-65535)`.
func (e *ParseError) Error() string { return fmt.Sprintf("invalid port list %q: %s", e.Input, e.Msg) }

// Unwrap returns ErrSyntax.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Parse reads a comma-separated list of ports and inclusive ranges, such as
// "8000-8100,8005,9000-9010". Spaces around items are ignored; ports are
// 1-65535 and a range's first port is not above its last. An empty list is an error.
func Parse(s string) (List, error) {
	if strings.TrimSpace(s) == "" {
		return nil, &ParseError{Input: s, Msg: "empty"}
	}
	items := strings.Split(s, ",")
	l := make(List, 0, len(items))
	for _, item := range items {
		r, msg := parseItem(strings.TrimSpace(item), 1)
		if msg != "" {
			return nil, &ParseError{Input: s, Msg: msg}
		}
		l = append(l, r)
	}
	return l, nil
}

// parseItem reads "N" or "N-M" with ports from min to MaxPort; msg says what
// is wrong, empty when the item is good.
func parseItem(item string, min int) (r Range, msg string) {
	lo, hi, isRange := strings.Cut(item, "-")
	first, msg := parsePort(lo, min)
	if msg != "" {
		return Range{}, msg
	}
	last := first
	if isRange {
		if last, msg = parsePort(hi, min); msg != "" {
			return Range{}, msg
		}
		if first > last {
			return Range{}, fmt.Sprintf("range %q runs backwards", item)
		}
	}
	return Range{First: first, Last: last}, ""
}

func parsePort(s string, min int) (int, string) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > MaxPort || strings.HasPrefix(s, "+") {
		return 0, fmt.Sprintf("%q is not a port (%d-%d)", s, min, MaxPort)
	}
	return n, ""
}

// parseKernelList reads the kernel's port list format, as in
// /proc/sys/net/ipv4/ip_local_reserved_ports: "" or "8000-8010,9000".
func parseKernelList(s string) (List, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var l List
	for _, item := range strings.Split(s, ",") {
		r, msg := parseItem(strings.TrimSpace(item), 0)
		if msg != "" {
			return nil, &ParseError{Input: s, Msg: msg}
		}
		l = append(l, r)
	}
	return l, nil
}

// parseKernelRange reads two whitespace-separated ports, the format of
// /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999").
func parseKernelRange(s string) (Range, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Range{}, &ParseError{Input: s, Msg: "want two ports"}
	}
	first, msg := parsePort(f[0], 1)
	if msg == "" {
		var last int
		if last, msg = parsePort(f[1], 1); msg == "" && first <= last {
			return Range{First: first, Last: last}, nil
		}
	}
	if msg == "" {
		msg = "range runs backwards"
	}
	return Range{}, &ParseError{Input: s, Msg: msg}
}

// fallbackEphemeral is the ephemeral range assumed where the OS does not
// say: IANA's dynamic/private range, which Windows, macOS and FreeBSD use by
// default.
func fallbackEphemeral() Range { return Range{First: 49152, Last: MaxPort} }

// Ephemeral returns the range the OS picks local ports from for outgoing
// connections and port-0 binds. Where the OS cannot be asked, it returns
// IANA's dynamic range, 49152-65535, and an error saying why; callers may
// use the range anyway.
func Ephemeral() (Range, error) { return ephemeral() }

// Reserved returns the ports the OS keeps out of the ephemeral pool on
// request (Linux net.ipv4.ip_local_reserved_ports); none elsewhere.
func Reserved() (List, error) { return reserved() }
