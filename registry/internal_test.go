package registry

import (
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/portrange"
)

func TestDefaultPathPerOS(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	home := func() (string, error) { return "/home/me", nil }
	noHome := func() (string, error) { return "", assert.AnError }
	tests := []struct {
		goos string
		env  map[string]string
		home func() (string, error)
		want string
	}{
		{"linux", map[string]string{"XDG_STATE_HOME": "/xdg/state"}, home, "/xdg/state/portfor/registry.db"},
		{"linux", map[string]string{"XDG_STATE_HOME": "relative"}, home, "/home/me/.local/state/portfor/registry.db"},
		{"linux", nil, home, "/home/me/.local/state/portfor/registry.db"},
		{"freebsd", nil, home, "/home/me/.local/state/portfor/registry.db"},
		{"darwin", nil, home, "/home/me/Library/Application Support/portfor/registry.db"},
		{"linux", nil, noHome, ""},
	}
	for _, tt := range tests {
		got, err := defaultPath(tt.goos, env(tt.env), tt.home)
		if tt.want == "" {
			assert.Error(t, err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "defaultPath(%s, %v)", tt.goos, tt.env)
	}
}

func TestAutoStartStaysOutOfEphemeralRange(t *testing.T) {
	for _, eph := range []portrange.Range{{First: 32768, Last: 60999}, {First: 49152, Last: 65535}, {First: 1024, Last: 65535}, {First: 10000, Last: 20000}} {
		r := &Registry{}
		r.rangesOnce.Do(func() { r.ephemeral = eph })
		for i := 0; i < 2000; i++ {
			p := r.autoStart(string(rune(i)) + "svc")
			if eph.First == MinPort && eph.Last == portrange.MaxPort {
				assert.Equal(t, MinPort, p)
				continue
			}
			require.True(t, p >= MinPort && p <= portrange.MaxPort && !eph.Contains(p), "autoStart gave %d for range %v", p, eph)
		}
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"web", "my service", "a:b", "-x", "", "ü", "\xff", "a\u200bb", "x/y.z", "\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if err != nil {
			if ie, ok := err.(*IDError); !ok || ie.ID != id || ie.Reason == "" {
				t.Fatalf("ValidateID(%q) = %v, want an *IDError naming it", id, err)
			}
			return
		}
		if id == "" || len(id) > MaxIDLen || id[0] == '-' || !utf8.ValidString(id) {
			t.Fatalf("ValidateID(%q) accepted a bad id", id)
		}
		for _, r := range id {
			if r == ':' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
				t.Fatalf("ValidateID(%q) accepted %q", id, r)
			}
		}
	})
}
