package registrytest

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/portfor/portfor/registry"
)

// leased returns the ports leased in reg.
func leased(t *testing.T, reg *registry.Registry) map[int]bool {
	t.Helper()
	all, err := reg.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, a := range all {
		if a.Kind == registry.Lease {
			out[a.Port] = true
		}
	}
	return out
}

func TestABinaryThatAsksOnceLeasesNothingAhead(t *testing.T) {
	reg := Registry(t)
	b := &batcher{reg: reg}
	got, err := b.lease(3)
	if err != nil {
		t.Fatal(err)
	}
	if held := leased(t, reg); len(held) != 3 || len(got) != 3 {
		t.Fatalf("asked for 3 ports, got %d, and %d are leased", len(got), len(held))
	}
}

func TestAsksAgainAreServedFromPortsLeasedAhead(t *testing.T) {
	reg := Registry(t)
	b := &batcher{reg: reg}
	seen := map[int]bool{}
	ask := func() int {
		t.Helper()
		got, err := b.lease(1)
		if err != nil {
			t.Fatal(err)
		}
		p := got[0].Port
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		return p
	}
	ask()
	ask() // leases one ahead
	if held := leased(t, reg); len(held) != 3 {
		t.Fatalf("after a second ask %d ports are leased, want 3: two handed out, one ahead", len(held))
	}
	ask() // from the one ahead: no new lease
	if held := leased(t, reg); len(held) != 3 {
		t.Fatalf("the third ask leased more: %d ports leased, want 3", len(held))
	}
	for range 40 {
		ask()
	}
	held := leased(t, reg)
	for p := range seen {
		if !held[p] {
			t.Errorf("port %d, handed out, is not leased", p)
		}
	}
	if ahead := len(held) - len(seen); ahead > maxAhead {
		t.Errorf("%d ports leased ahead, want at most %d", ahead, maxAhead)
	}
}

func TestAPortLeasedAheadAndTakenMeanwhileIsPassedOver(t *testing.T) {
	reg := Registry(t)
	b := &batcher{reg: reg}
	b.lease(1)
	b.lease(1) // leases one ahead
	if len(b.ahead) != 1 {
		t.Fatalf("%d ports leased ahead, want 1", len(b.ahead))
	}
	taken := b.ahead[0].Port
	// Another program binds it, after the check of its lease has grown old.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b.ahead[0].at = time.Now().Add(-fresh)
	got, err := b.lease(1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Port == taken {
		t.Fatalf("port %d was handed out while another program listened on it", taken)
	}
	if leased(t, reg)[taken] {
		t.Errorf("port %d, passed over, is still leased to this process", taken)
	}
}

func TestAPortLeasedAheadIsNotCheckedAgainWhileFresh(t *testing.T) {
	reg := Registry(t)
	b := &batcher{reg: reg}
	b.lease(1)
	b.lease(1)
	if len(b.ahead) != 1 {
		t.Fatalf("%d ports leased ahead, want 1", len(b.ahead))
	}
	// A socket of this very test on the port: a check would see it. Within
	// fresh the port goes out as leased, as a lease hands out its port.
	want := b.ahead[0].Port
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(want)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b.ahead[0].at = time.Now()
	if got, err := b.lease(1); err != nil || got[0].Port != want {
		t.Fatalf("got %v, %v, want port %d, leased ahead", got, err, want)
	}
}
