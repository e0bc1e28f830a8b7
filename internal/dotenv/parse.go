// Package dotenv reads, writes and merges .env files as python-dotenv (and
// the many loaders that follow it) read them, so that portfor can update
// the variables it owns in a file people also edit by hand.
//
// [Parse] follows python-dotenv's parser (dotenv/parser.py, 0.21 and
// later) step for step, so that both agree on where every binding and its
// value are: a line inside a multi-line quoted value is part of that value,
// never a binding of its own, and a line python-dotenv cannot read is
// skipped as it skips it. [Merge] rewrites only the values of the
// variables it is given and keeps every other byte of the file.
//
// Values are taken literally: Parse does not expand ${VAR} as python-dotenv
// does by default.
package dotenv

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Binding is one KEY=VALUE (or bare KEY) that python-dotenv reads from a file.
type Binding struct {
	Key string // the variable's name
	// Value is the value as python-dotenv reads it (escapes decoded,
	// without expansion); HasValue is false for a bare KEY, which
	// python-dotenv reads as None.
	Value    string
	HasValue bool
	// Export is true when the binding starts with "export ".
	Export bool
	// Quote is the value's quote: 0 (none), '\'' or '"'.
	Quote byte
	// Start and End are the byte offsets of the value in the source, its
	// quotes included; Start == End for an empty unquoted value.
	Start, End int
}

// Parse returns the bindings of src in order, as python-dotenv finds them.
// It never fails: what python-dotenv cannot read (a line without '=' and
// without a key, an unterminated quote, text after a closing quote) is
// skipped to the end of its line, as python-dotenv skips it.
func Parse(src []byte) []Binding {
	p := parser{s: string(src)}
	var out []Binding
	for p.i < len(p.s) {
		b, ok := p.binding()
		if !ok {
			p.restOfLine()
			continue
		}
		if b.Key != "" {
			out = append(out, b)
		}
	}
	return out
}

type parser struct {
	s string
	i int
}

// isSpace is Python's \s for str patterns: Unicode white space, which in
// Python includes the separators U+001C to U+001F.
func isSpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// isInlineSpace is Python's [^\S\r\n].
func isInlineSpace(r rune) bool { return r != '\r' && r != '\n' && isSpace(r) }

func (p *parser) peek() rune {
	if p.i >= len(p.s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return r
}

// skip advances past runes for which f is true.
func (p *parser) skip(f func(rune) bool) {
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if !f(r) {
			return
		}
		p.i += n
	}
}

// lineEnd returns the offset of the first '\r' or '\n' at or after i.
func (p *parser) lineEnd(i int) int {
	if k := strings.IndexAny(p.s[i:], "\r\n"); k >= 0 {
		return i + k
	}
	return len(p.s)
}

// restOfLine is _rest_of_line: [^\r\n]*(?:\r|\n|\r\n)? (a "\r\n" loses
// only its '\r' here; the '\n' is white space before the next binding).
func (p *parser) restOfLine() {
	p.i = p.lineEnd(p.i)
	if p.i < len(p.s) {
		p.i++
	}
}

// binding is parse_binding: ok is false where python-dotenv raises its
// Error, with p.i where it was raised. A binding with Key "" is white
// space, a comment or a line without a key.
func (p *parser) binding() (b Binding, ok bool) {
	p.skip(isSpace) // _multiline_whitespace
	if p.i == len(p.s) {
		return b, true
	}
	if p.s[p.i] == '#' {
		p.restOfLine()
		return b, true
	}
	// _export: export[^\S\r\n]+
	if strings.HasPrefix(p.s[p.i:], "export") {
		j := p.i + len("export")
		r, _ := utf8.DecodeRuneInString(p.s[j:])
		if j < len(p.s) && isInlineSpace(r) {
			p.i = j
			p.skip(isInlineSpace)
			b.Export = true
		}
	}
	// parse_key
	switch p.peek() {
	case '#':
		// No key: the rest is read as a comment below.
	case '\'':
		k := strings.IndexByte(p.s[p.i+1:], '\'')
		if k <= 0 { // '([^']+)': at least one character, then the quote
			return b, false
		}
		b.Key = p.s[p.i+1 : p.i+1+k]
		p.i += k + 2
	default:
		start := p.i
		p.skip(func(r rune) bool { return r != '=' && r != '#' && !isSpace(r) })
		if p.i == start {
			return b, false
		}
		b.Key = p.s[start:p.i]
	}
	p.skip(isInlineSpace)
	if p.peek() == '=' {
		p.i++
		p.skip(isInlineSpace)
		if !p.value(&b) {
			return b, false
		}
	}
	// _comment: (?:[^\S\r\n]*#[^\r\n]*)?
	j := p.i
	p.skip(isInlineSpace)
	if p.peek() == '#' {
		p.i = p.lineEnd(p.i)
	} else {
		p.i = j
	}
	// _end_of_line: [^\S\r\n]*(?:\r\n|\n|\r|$)
	p.skip(isInlineSpace)
	switch {
	case p.i == len(p.s):
	case strings.HasPrefix(p.s[p.i:], "\r\n"):
		p.i += 2
	case p.s[p.i] == '\n' || p.s[p.i] == '\r':
		p.i++
	default:
		return b, false
	}
	return b, true
}

// value is parse_value, for the value starting at p.i.
func (p *parser) value(b *Binding) bool {
	b.HasValue = true
	b.Start = p.i
	switch r := p.peek(); r {
	case '\'', '"':
		// '((?:\\'|[^'])*)' and "((?:\\"|[^"])*)": a backslash before the
		// quote keeps it in the value; the first other quote closes it.
		// Without such a quote the regular expression backtracks: the
		// quote of the last \' closes the value, if there is one.
		q := byte(r)
		j, lastEscaped := p.i+1, -1
		for ; j < len(p.s) && p.s[j] != q; j++ {
			if p.s[j] == '\\' && j+1 < len(p.s) && p.s[j+1] == q {
				j++
				lastEscaped = j
			}
		}
		if j == len(p.s) {
			if lastEscaped < 0 {
				return false
			}
			j = lastEscaped
		}
		b.Quote = q
		b.Value = unescape(p.s[p.i+1:j], q)
		p.i = j + 1
	case -1, '\r', '\n':
	default:
		// _unquoted_value, then re.sub(r"\s+#.*", "", part).rstrip()
		end := p.lineEnd(p.i)
		part := p.s[p.i:end]
		part = part[:commentStart(part)]
		part = strings.TrimRightFunc(part, isSpace)
		b.Value = part
		p.i = end
	}
	b.End = b.Start + len(b.Value)
	if b.Quote != 0 {
		b.End = p.i
	}
	return true
}

// commentStart returns where the first run of white space followed by '#'
// starts in s, or len(s).
func commentStart(s string) int {
	for i, r := range s {
		if !isSpace(r) {
			continue
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !isSpace(r) {
				break
			}
			j += n
		}
		if j < len(s) && s[j] == '#' {
			return i
		}
	}
	return len(s)
}

// unescape decodes the escapes python-dotenv decodes in a value quoted with
// q: \\ and \' in single quotes; \\ \' \" \a \b \f \n \r \t \v in double.
func unescape(s string, q byte) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			c := s[i+1]
			var d byte
			switch {
			case c == '\\' || c == '\'':
				d = c
			case q == '"' && c == '"':
				d = c
			case q == '"':
				d = map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[c]
			}
			if d != 0 {
				b.WriteByte(d)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
