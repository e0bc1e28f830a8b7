package iana

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTableInvariants checks that registeredTCP is what Registered's binary
// search relies on: sorted, non-empty ranges, disjoint and non-adjacent
// (merged), excluding port 0, with registeredCount matching.
func TestTableInvariants(t *testing.T) {
	require.NotEmpty(t, registeredTCP)
	count := 0
	for i, r := range registeredTCP {
		require.LessOrEqual(t, r.lo, r.hi, "range %d %v", i, r)
		require.NotZero(t, r.lo, "range %d %v includes port 0", i, r)
		if i > 0 {
			prev := registeredTCP[i-1]
			require.Greater(t, int(r.lo), int(prev.hi)+1, "range %d %v overlaps or touches %v", i, r, prev)
		}
		count += int(r.hi-r.lo) + 1
	}
	require.Equal(t, registeredCount, count)
}

// TestRegisteredMatchesTable cross-checks the binary search against the
// table expanded into one flag per port.
func TestRegisteredMatchesTable(t *testing.T) {
	var want [65536]bool
	for _, r := range registeredTCP {
		for p := int(r.lo); p <= int(r.hi); p++ {
			want[p] = true
		}
	}
	for p, w := range want {
		if got := Registered(p); got != w {
			t.Fatalf("Registered(%d) = %v, want %v", p, got, w)
		}
	}
}
