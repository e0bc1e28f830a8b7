package procinfo

import (
	"os"
	"testing"
)

// BenchmarkAlive measures the common path of every lease check: the owner
// is a running process in the namespace /proc shows.
func BenchmarkAlive(b *testing.B) {
	me, err := Lookup(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := Alive(me); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkLookupSelf measures Lookup(os.Getpid()), which every lease for
// the caller makes.
func BenchmarkLookupSelf(b *testing.B) {
	pid := os.Getpid()
	for b.Loop() {
		if _, err := Lookup(pid); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAliveOtherNamespace measures the rare path: an owner recorded in
// a namespace no process here lives in, which takes a scan of /proc.
func BenchmarkAliveOtherNamespace(b *testing.B) {
	me, err := Lookup(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	me.NS++
	for b.Loop() {
		if _, err := Alive(me); err != nil {
			b.Fatal(err)
		}
	}
}
