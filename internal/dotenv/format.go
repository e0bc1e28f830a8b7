package dotenv

import (
	"bytes"
	"strings"
)

// Var is a variable to write: a name (a shell identifier) and its value.
type Var struct {
	Name, Value string
}

// IsIdentifier reports whether s is a shell variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func IsIdentifier(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Identifier turns s into an upper-case shell variable name: ASCII letters
// are upper-cased, every other character but A-Z and 0-9 becomes '_', and
// a leading digit gets a '_' before it. "my-service" is MY_SERVICE, "3d"
// is _3D, "" is _.
func Identifier(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	return out
}

// isBare reports whether v can be written without quotes, meaning the
// same to python-dotenv and to a POSIX shell.
func isBare(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_./:@%+,-", c) >= 0) {
			return false
		}
	}
	return true
}

// Quote returns v as a dotenv value, quoted only when it needs to be:
// bare when it holds only letters, digits and _./:@%+,- (a port does),
// else in single quotes when it holds no ' \ or line break, else in double
// quotes with \\ \" and \n escaped. Parse reads the result back as v.
// A double-quoted value is expanded by python-dotenv (${VAR}) and by a
// shell ($, `), so only the bare and single-quoted forms mean the same to
// every reader.
func Quote(v string) string {
	switch {
	case isBare(v):
		return v
	case !strings.ContainsAny(v, "'\\\r\n"):
		return "'" + v + "'"
	}
	return doubleQuote(v)
}

func doubleQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(v) + `"`
}

// ShellQuote returns v quoted for a POSIX shell: bare when that is safe,
// else in single quotes ('\” for a quote inside).
func ShellQuote(v string) string {
	if v != "" && isBare(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// requote writes v in the style of the value b: the same quotes when they
// can hold v, else as Quote writes it.
func requote(v string, q byte) string {
	switch {
	case q == '"':
		return doubleQuote(v)
	case q == '\'' && !strings.ContainsAny(v, "'\\\r\n"):
		return "'" + v + "'"
	case q == 0 && isBare(v):
		return v
	}
	return Quote(v)
}

// Merge returns src with the variables vars set, and the names of those it
// changed or added, in the order of vars:
//
//   - every binding of a variable in vars whose value differs gets the new
//     value, in its own quoting style where that can hold it; its "export ",
//     spacing and comment stay;
//   - a variable without a binding (or with only a bare KEY, which has no
//     value) is appended as NAME=VALUE (see [Quote]), after a line break if
//     src does not end with one;
//   - every other byte stays as it is. A file whose first line ends in CRLF
//     gets CRLF line ends, one with only CRs (and no LF) gets CRs.
//
// When nothing changes, Merge returns src itself and no names. Names in
// vars must be identifiers (see [IsIdentifier]); the first of two Vars with
// one name counts.
func Merge(src []byte, vars []Var) ([]byte, []string) {
	want := map[string]string{}
	var order []string
	for _, v := range vars {
		if _, dup := want[v.Name]; !dup {
			want[v.Name] = v.Value
			order = append(order, v.Name)
		}
	}
	changed := map[string]bool{}
	seen := map[string]bool{}
	var out bytes.Buffer
	last := 0
	for _, b := range Parse(src) {
		v, ours := want[b.Key]
		if !ours || !b.HasValue {
			continue
		}
		seen[b.Key] = true
		if b.Value == v {
			continue
		}
		out.Write(src[last:b.Start])
		out.WriteString(requote(v, b.Quote))
		last = b.End
		changed[b.Key] = true
	}
	var tail bytes.Buffer
	eol := lineEnd(src)
	for _, name := range order {
		if seen[name] {
			continue
		}
		if tail.Len() == 0 && len(src) > 0 && src[len(src)-1] != '\n' && src[len(src)-1] != '\r' {
			tail.WriteString(eol)
		}
		tail.WriteString(name + "=" + Quote(want[name]) + eol)
		changed[name] = true
	}
	if len(changed) == 0 {
		return src, nil
	}
	out.Write(src[last:])
	out.Write(tail.Bytes())
	var names []string
	for _, name := range order {
		if changed[name] {
			names = append(names, name)
		}
	}
	return out.Bytes(), names
}

// lineEnd returns the line end src uses: that of its first line.
func lineEnd(src []byte) string {
	i := bytes.IndexAny(src, "\r\n")
	switch {
	case i < 0 || src[i] == '\n':
		return "\n"
	case i+1 < len(src) && src[i+1] == '\n':
		return "\r\n"
	case bytes.IndexByte(src, '\n') < 0:
		return "\r"
	}
	return "\n"
}
