package portrange

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWithout(t *testing.T) {
	r := func(a, b int) Range { return Range{First: a, Last: b} }
	tests := []struct {
		list List
		cut  Range
		want List
	}{
		{List{r(1024, 65535)}, r(32768, 60999), List{r(1024, 32767), r(61000, 65535)}},
		{List{r(1, 100)}, r(0, 1023), List{}},
		{List{r(15000, 24999)}, r(32768, 60999), List{r(15000, 24999)}},
		{List{r(9000, 9000), r(30000, 40000)}, r(32768, 60999), List{r(9000, 9000), r(30000, 32767)}},
		{List{r(50000, 65535)}, r(49152, 65535), List{}},
		{List{r(9000, 9010), r(8000, 8010)}, r(8005, 9005), List{r(9006, 9010), r(8000, 8004)}}, // order kept
		{List{r(10, 20)}, r(10, 10), List{r(11, 20)}},
		{List{r(10, 20)}, r(20, 20), List{r(10, 19)}},
		{nil, r(1, 2), List{}},
	}
	for _, tt := range tests {
		before := slices.Clone(tt.list)
		assert.Equal(t, tt.want, tt.list.Without(tt.cut), "%v.Without(%v)", tt.list, tt.cut)
		assert.Equal(t, before, tt.list, "Without leaves its list alone")
	}
}

func TestLenAtIndex(t *testing.T) {
	l := List{{9000, 9000}, {8000, 8002}, {8001, 8001}}
	assert.Equal(t, 5, l.Len(), "a port listed twice counts twice")
	var got []int
	for i := -1; i <= l.Len(); i++ {
		got = append(got, l.At(i))
	}
	assert.Equal(t, []int{0, 9000, 8000, 8001, 8002, 8001, 0}, got, "At(-1) and At(Len()) are 0")

	asc := List{{100, 199}, {300, 300}, {1000, 1999}}
	for port, want := range map[int]int{1: 0, 100: 0, 150: 50, 199: 99, 200: 100, 300: 100, 301: 101, 1000: 101, 1999: 1100, 2000: 0, MaxPort: 0} {
		assert.Equal(t, want, asc.Index(port), "Index(%d)", port)
	}
	assert.Equal(t, 0, List(nil).Len())
	assert.Equal(t, 0, List(nil).At(0))
	assert.Equal(t, 0, List(nil).Index(80))
}

// TestListAlgebraMatchesThePortsItYields checks the methods against their
// definitions, spelled out on the ports [List.Ports] yields, for random lists.
func TestListAlgebraMatchesThePortsItYields(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var l List
		for range rnd.IntN(5) {
			first := 1 + rnd.IntN(200)
			l = append(l, Range{First: first, Last: first + rnd.IntN(40)})
		}
		var ports []int
		l.Ports(func(p int) bool { ports = append(ports, p); return true })

		require.Equal(t, len(ports), l.Len(), "%v", l)
		for i, p := range ports {
			require.Equal(t, p, l.At(i), "%v.At(%d)", l, i)
		}

		cut := Range{First: rnd.IntN(250), Last: 0}
		cut.Last = cut.First + rnd.IntN(60)
		var want []int
		for _, p := range ports {
			if !cut.Contains(p) {
				want = append(want, p)
			}
		}
		var got []int
		l.Without(cut).Ports(func(p int) bool { got = append(got, p); return true })
		require.Equal(t, want, got, "%v.Without(%v)", l, cut)

		// On an ascending list of disjoint ranges, Index finds the first port >= p.
		asc := slices.Clone(l)
		slices.SortFunc(asc, func(a, b Range) int { return a.First - b.First })
		asc = slices.CompactFunc(asc, func(a, b Range) bool { return b.First <= a.Last })
		var sorted []int
		asc.Ports(func(p int) bool { sorted = append(sorted, p); return true })
		for p := 0; p <= 260; p += 1 + rnd.IntN(7) {
			want, _ := slices.BinarySearch(sorted, p)
			if want == len(sorted) {
				want = 0 // none at or above p: start from the beginning
			}
			require.Equal(t, want, asc.Index(p), "%v.Index(%d)", asc, p)
		}
	}
}
