package registrytest

import (
	"slices"
	"testing"
)

// scope is one iteration's test: it runs the cleanups registered with it
// when end is called, so that a benchmark's iteration pays for giving
// back what it got, as a test does when it ends. Everything else goes to
// the benchmark's B.
type scope struct {
	testing.TB
	cleanups []func()
}

func (s *scope) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *scope) end() {
	for _, f := range slices.Backward(s.cleanups) {
		f()
	}
	s.cleanups = s.cleanups[:0]
}

// BenchmarkPort is one Port and its release at cleanup, on the user's
// registry ($PORTFOR_DB: TestMain gives these tests one of their own).
// Issue 13's target: at most 0.5 ms.
func BenchmarkPort(b *testing.B) {
	s := &scope{TB: b}
	for b.Loop() {
		Port(s)
		s.end()
	}
}

// BenchmarkListener is one Listener: lease, bind, close, release.
func BenchmarkListener(b *testing.B) {
	s := &scope{TB: b}
	for b.Loop() {
		Listener(s)
		s.end()
	}
}

// BenchmarkPortParallel is BenchmarkPort from parallel tests, as
// t.Parallel runs them: their leases go out together (batch.go), their
// releases one at a time.
func BenchmarkPortParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		s := &scope{TB: b}
		for pb.Next() {
			Port(s)
			s.end()
		}
	})
}
