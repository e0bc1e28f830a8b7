package registry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Coming from port-for: Python's port-for (Debian's python3-port-for)
// keeps its name→port bindings in an INI file, /etc/port-for.conf by
// default, read and written by configparser.ConfigParser with its
// defaults. port_for.PortStore keeps them in the DEFAULT section:
//
//	[DEFAULT]
//	web = 8001
//	api = 8002
//
// The parser below reads what that ConfigParser reads, line for line (see
// Python 3.11's configparser.RawConfigParser._read), so an import sees
// the bindings port-for itself sees.

// DefaultPortForConfig is where port-for keeps its bindings unless told
// otherwise (port_for.store.DEFAULT_CONFIG_PATH).
const DefaultPortForConfig = "/etc/port-for.conf"

// ErrPortForConfig is wrapped by every error of [ParsePortForConfig]: the
// input is no port-for config file that port-for itself could read.
var ErrPortForConfig = errors.New("invalid port-for config")

// PortForConfigError is an error in a port-for config file, at a line.
type PortForConfigError struct {
	Line   int    // 1-based; 0 when the error is not at one line (a read error)
	Reason string // e.g. `duplicate name "web" (first on line 2)`
	Err    error  // an underlying read error, if any
}

// Error returns e.g. `line 3: duplicate name "web" (first on line 2)`.
func (e *PortForConfigError) Error() string {
	if e.Line == 0 {
		return e.Reason
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Unwrap returns ErrPortForConfig, and the read error if there was one.
func (e *PortForConfigError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrPortForConfig, e.Err}
	}
	return []error{ErrPortForConfig}
}

// PortForBinding is one name→port binding of a port-for config file.
type PortForBinding struct {
	// Name is the name as port-for sees it: configparser lower-cases
	// option names, so "Web = 8001" binds "web". It may be a name that
	// [ValidateID] refuses (port-for allows spaces, for one).
	Name string
	// Port is the number port-for reads (Python's int() of the value). It
	// may lie outside 1-65535: port-for does not check.
	Port int
	// Line is the line of the file the binding is on (1-based), or 0.
	Line int
}

// portForMaxLine bounds one line: a config file is short, and a line this
// long is not one.
const portForMaxLine = 1 << 20

// ParsePortForConfig reads a port-for config file and returns its
// bindings (the options of its DEFAULT section) in the order of the file.
// It reads what port-for's ConfigParser reads: a section header "[NAME]"
// (its name runs to the last ']' of the line), "name = value" or
// "name: value" option lines (the name runs to the first '=' or ':'),
// whole-line comments starting with '#' or ';' (no comments after a
// value), continuation lines (indented deeper than their option; a value
// that continues is no port number), lines ending in \n, \r\n or \r, and
// UTF-8. Other sections than DEFAULT are checked but port-for ignores
// them, and so does this. A file port-for would refuse (an option before
// any section header, a line that is neither a header nor an option, a
// name given twice in a section, a section given twice) is refused, and so
// is a value that is not an integer as Python's int() reads it (ASCII
// digits with an optional sign and single '_' between digits) or that uses
// configparser's '%' interpolation, which port-for never writes. Errors
// are [*PortForConfigError]s wrapping [ErrPortForConfig], and name the
// line.
func ParsePortForConfig(r io.Reader) ([]PortForBinding, error) {
	type option struct {
		line  int
		value []string // the value's lines, as configparser collects them
	}
	var (
		out         []PortForBinding
		defaults    = map[string]*option{}
		order       []string // DEFAULT's option names in file order
		sections    = map[string]bool{}
		added       = map[[2]string]int{} // (section, option) → line
		inSection   = false
		sect        string
		cur         *option // the option a continuation line would extend
		indentLevel = 0
	)
	fail := func(line int, format string, args ...any) ([]PortForBinding, error) {
		return nil, &PortForConfigError{Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	br := bufio.NewReader(r)
	for lineno := 1; ; lineno++ {
		line, err := readPyLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, bufio.ErrBufferFull) {
				return fail(lineno, "line longer than %d bytes", portForMaxLine)
			}
			return nil, &PortForConfigError{Reason: "read: " + err.Error(), Err: err}
		}
		if line == "" && errors.Is(err, io.EOF) {
			break
		}
		if !utf8.ValidString(line) {
			return fail(lineno, "not valid UTF-8")
		}
		if lineno == 1 && strings.HasPrefix(line, "\uFEFF") {
			return fail(lineno, "starts with a byte order mark, which port-for's configparser does not skip")
		}
		stripped := pyStrip(line)
		comment := strings.HasPrefix(stripped, "#") || strings.HasPrefix(stripped, ";")
		if comment || stripped == "" {
			// An empty line (not a comment) belongs to the value being
			// read, which a later continuation line may extend.
			if !comment && cur != nil {
				cur.value = append(cur.value, "")
			}
			continue
		}
		indent := pyIndent(line)
		if cur != nil && indent > indentLevel {
			cur.value = append(cur.value, stripped)
			continue
		}
		indentLevel = indent
		if name, ok := pySectionHeader(stripped); ok {
			if name != "DEFAULT" {
				if sections[name] {
					return fail(lineno, "section [%s] given twice", name)
				}
				sections[name] = true
			}
			inSection, sect, cur = true, name, nil
			continue
		}
		if !inSection {
			return fail(lineno, "%s before any section header (port-for writes [DEFAULT] first)", quoteLine(stripped))
		}
		i := strings.IndexAny(stripped, "=:")
		if i < 0 {
			return fail(lineno, "%s is neither a section header nor name = port", quoteLine(stripped))
		}
		name := pyLower(pyRstrip(stripped[:i]))
		if name == "" {
			return fail(lineno, "no name before %q", stripped[i:i+1])
		}
		if first, dup := added[[2]string{sect, name}]; dup {
			return fail(lineno, "duplicate name %s in [%s] (first on line %d)", quoteLine(name), sect, first)
		}
		added[[2]string{sect, name}] = lineno
		cur = &option{line: lineno, value: []string{pyStrip(stripped[i+1:])}}
		if sect == "DEFAULT" {
			defaults[name] = cur
			order = append(order, name)
		}
	}
	for _, name := range order {
		o := defaults[name]
		value := pyRstrip(strings.Join(o.value, "\n"))
		port, ok := pyInt(value)
		if !ok {
			reason := fmt.Sprintf("%s: value %s is not a port number", quoteLine(name), quoteLine(value))
			if strings.Contains(value, "\n") {
				reason += " (a line indented under it continues the value)"
			} else if strings.Contains(value, "%") {
				reason += " ('%' interpolation is not supported)"
			}
			return fail(o.line, "%s", reason)
		}
		out = append(out, PortForBinding{Name: name, Port: port, Line: o.line})
	}
	return out, nil
}

// readPyLine reads one line as Python's text mode does (universal
// newlines: \n, \r\n and \r end a line), without its end. It returns
// io.EOF with the last line when that has no line end, and with "" at the
// end of the input.
func readPyLine(br *bufio.Reader) (string, error) {
	var b bytes.Buffer
	for {
		c, err := br.ReadByte()
		if err != nil {
			return b.String(), err
		}
		switch c {
		case '\n':
			return b.String(), nil
		case '\r':
			if next, err := br.Peek(1); err == nil && next[0] == '\n' {
				br.ReadByte()
			}
			return b.String(), nil
		}
		if b.Len() >= portForMaxLine {
			return "", bufio.ErrBufferFull
		}
		b.WriteByte(c)
	}
}

// pySectionHeader matches configparser's SECTCRE, `\[(?P<header>.+)\]`,
// at the start of a stripped line: the name runs from the '[' to the
// line's last ']', and anything after that ']' is ignored.
func pySectionHeader(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return "", false
	}
	j := strings.LastIndexByte(s, ']')
	if j < 2 {
		return "", false
	}
	return s[1:j], true
}

// pyIsSpace is Python's str.isspace for one character.
func pyIsSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1c && r <= ' ', r == 0x85, r == 0xa0, r == 0x1680,
		r >= 0x2000 && r <= 0x200a, r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyRstrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pyIndent is the index, in characters, of the first one that is not
// space (configparser's NONSPACECRE); 0 for a line of spaces.
func pyIndent(s string) int {
	n := 0
	for _, r := range s {
		if !pyIsSpace(r) {
			return n
		}
		n++
	}
	return 0
}

// pyLower is str.lower as configparser's optionxform applies it, for the
// names port-for writes (it lower-cases them itself when it writes): ASCII
// and the simple case mappings of Unicode.
func pyLower(s string) string { return strings.ToLower(s) }

// pyInt reads a value as Python's int() does, for ASCII: an optional sign,
// then decimal digits with single underscores between them. It reports
// false for anything else and for numbers beyond ±1e9.
func pyInt(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	digits := strings.ReplaceAll(s, "_", "")
	if !isDigits(digits) {
		return 0, false
	}
	digits = strings.TrimLeft(digits, "0")
	if len(digits) > 9 {
		return 0, false
	}
	n := 0
	if digits != "" {
		n, _ = strconv.Atoi(digits)
	}
	if neg {
		n = -n
	}
	return n, true
}

// quoteLine quotes a line for an error, shortened.
func quoteLine(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}
