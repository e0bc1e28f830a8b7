// Package oneline makes a message fit for one line of a terminal: folded
// to one line, with every control character escaped. Error messages carry
// text that others chose (a server's certificate names, an HTTP reason, a
// file or registry name) and must neither break the one-line rule of
// portfor's stderr nor send escape sequences to the user's terminal.
package oneline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// hidden reports whether r acts on a terminal or on how text around it
// reads rather than showing itself: control characters, and format
// characters such as U+202E (right-to-left override) and U+200B (zero
// width space).
func hidden(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// Clean returns s on one line: line breaks become "; ", runs of white
// space one space, and control characters (C0, DEL, C1), format characters
// (bidi overrides, zero-width ones) and invalid UTF-8 Go escapes such as
// \x1b or \u202e. Other text is left as it is.
func Clean(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "; ")
	return Escape(strings.Join(strings.Fields(s), " "))
}

// Escape writes control and format characters and invalid UTF-8 in s as
// Go escapes, leaving all other text, spaces and line breaks included, as
// it is.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r != '\n' && hidden(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r != '\n' && hidden(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
