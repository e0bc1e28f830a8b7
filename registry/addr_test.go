package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

func TestParseHostPort(t *testing.T) {
	good := []struct {
		in   string
		want registry.HostPort
		str  string
	}{
		{"localhost:8080", registry.HostPort{Host: "localhost", Port: 8080}, "localhost:8080"},
		{"127.0.0.1:80", registry.HostPort{Host: "127.0.0.1", Port: 80}, "127.0.0.1:80"},
		{"[::1]:8080", registry.HostPort{Host: "::1", Port: 8080}, "[::1]:8080"},
		{"[0:0::1]:8080", registry.HostPort{Host: "::1", Port: 8080}, "[::1]:8080"},
		{"[::]:65535", registry.HostPort{Host: "::", Port: 65535}, "[::]:65535"},
		{":8080", registry.HostPort{Host: "localhost", Port: 8080}, "localhost:8080"},
		{"8080", registry.HostPort{Host: "localhost", Port: 8080}, "localhost:8080"},
		{"1", registry.HostPort{Host: "localhost", Port: 1}, "localhost:1"},
		{"db.example.internal:5432", registry.HostPort{Host: "db.example.internal", Port: 5432}, "db.example.internal:5432"},
		{"my_host-1:22", registry.HostPort{Host: "my_host-1", Port: 22}, "my_host-1:22"},
	}
	for _, tt := range good {
		got, err := registry.ParseHostPort(tt.in)
		require.NoError(t, err, "ParseHostPort(%q)", tt.in)
		assert.Equal(t, tt.want, got, "ParseHostPort(%q)", tt.in)
		assert.Equal(t, tt.str, got.String())
	}
	bad := map[string]string{
		"":                "empty",
		"localhost":       `port "localhost" is not a number`,
		"localhost:":      `port "" is not a number`,
		"localhost:0":     `port "0" is not a number`,
		"localhost:65536": `port "65536"`,
		"localhost:http":  `port "http"`,
		"::1:8080":        "needs brackets",
		"[::1]":           "missing port",
		"[127.0.0.1]:80":  "not an IPv6 address",
		"[::1:80":         "missing ']'",
		"host name:80":    `contains ' '`,
		"a..b:80":         "empty or over-long label",
		"-5":              `port "-5"`,
		"+5":              `port "+5"`,
		"h:80:90":         "needs brackets",
	}
	for in, want := range bad {
		_, err := registry.ParseHostPort(in)
		require.Error(t, err, "ParseHostPort(%q)", in)
		assert.ErrorIs(t, err, registry.ErrInvalidAddress)
		assert.Contains(t, err.Error(), want, "ParseHostPort(%q)", in)
		assert.Contains(t, err.Error(), `"`+in+`"`)
	}
}

func TestClientHost(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0": "127.0.0.1", "::": "::1", "::0": "::1", "::0.0.0.0": "::1", "[::]": "::1",
		"127.0.0.1": "127.0.0.1", "::1": "::1", "localhost": "localhost", "10.1.2.3": "10.1.2.3", "example.com": "example.com",
	} {
		assert.Equal(t, want, registry.ClientHost(in), "ClientHost(%q)", in)
	}
}

func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"localhost:8080", "[::1]:80", ":1", "8080", "::1:80", "[", "]:", "a:b:c", "[fe80::1%eth0]:80", "x:0", "99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, err := registry.ParseHostPort(s)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidAddress) {
				t.Fatalf("ParseHostPort(%q): %v does not wrap ErrInvalidAddress", s, err)
			}
			return
		}
		if hp.Port < 1 || hp.Port > 65535 || hp.Host == "" {
			t.Fatalf("ParseHostPort(%q) = %+v", s, hp)
		}
		again, err := registry.ParseHostPort(hp.String())
		if err != nil || again != hp {
			t.Fatalf("round trip of %q via %q: %+v, %v", s, hp.String(), again, err)
		}
		if strings.ContainsAny(hp.Host, " \t\n[]") {
			t.Fatalf("ParseHostPort(%q) kept a bad host %q", s, hp.Host)
		}
	})
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"8000-8100", "8000,8005,9000-9010", "0", "9-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := registry.ParsePorts(s)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidPort) {
				t.Fatalf("ParsePorts(%q): %v", s, err)
			}
			return
		}
		for _, r := range l {
			if r.First < 1 || r.Last > 65535 || r.First > r.Last {
				t.Fatalf("ParsePorts(%q) gave %v", s, r)
			}
		}
	})
}
