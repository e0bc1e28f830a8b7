package oneline

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                         "plain text",
		"two\nlines":                         "two; lines",
		"  spaced \t out  ":                  "spaced out",
		"valid for a\x1b]0;PWNED\x07b, not":  `valid for a\x1b]0;PWNED\ab, not`,
		"del\x7f c1\u009b bad\xff utf8 é":    `del\x7f c1\u009b bad\xff utf8 é`,
		"moc.\u202elive and zero\u200bwidth": `moc.\u202elive and zero\u200bwidth`,
		"":                                   "",
	} {
		assert.Equal(t, want, Clean(in), "%q", in)
	}
	assert.Equal(t, "keeps\nlines \\x1b", Escape("keeps\nlines \x1b"))
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"a\nb", "\x1b[2J", "\xff\xfe", "tab\there", "é\u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		assert.NotContains(t, out, "\n")
		for _, r := range out {
			assert.False(t, unicode.IsControl(r) || unicode.Is(unicode.Cf, r), "%q has control %U", out, r)
		}
		assert.Equal(t, out, Clean(out), "clean text stays as it is")
		if !strings.ContainsFunc(s, unicode.IsSpace) && Escape(s) == s {
			assert.Equal(t, s, out, "text with nothing to fold or escape is kept")
		}
	})
}
