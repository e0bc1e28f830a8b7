package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portfor/portfor/internal/backoff"
)

// ErrTimeout is returned (in a [*WaitError]) when a wait's context deadline
// passes before the port reaches the wanted state.
var ErrTimeout = errors.New("timed out")

// WaitError is returned by [WaitOccupied] and [WaitFree] when the context
// ends first. It unwraps to the context's error and, for a deadline, to
// [ErrTimeout].
type WaitError struct {
	Addr   HostPort
	State  string        // "occupied" or "free": what was waited for
	Waited time.Duration // how long the wait lasted
	Err    error         // the context's error
}

// Error returns portend's message with the time waited, e.g.
// "Port 8080 not bound on localhost (waited 5s)." or
// "Port 8080 not free on localhost (waited 5s).".
func (e *WaitError) Error() string {
	what := "bound"
	if e.State == "free" {
		what = "free"
	}
	how := "waited"
	if errors.Is(e.Err, context.Canceled) {
		how = "canceled after"
	}
	return fmt.Sprintf("Port %d not %s on %s (%s %s).", e.Addr.Port, what, e.Addr.Host, how, e.Waited.Round(time.Millisecond))
}

// Unwrap returns ErrTimeout (for a deadline) and the context's error.
func (e *WaitError) Unwrap() []error {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return []error{ErrTimeout, e.Err}
	}
	return []error{e.Err}
}

// Polling bounds for waits: the first retry comes after pollFirst, each
// later one after twice the last, up to pollMax. A refused connection on
// loopback costs microseconds, so this finds a new listener within
// milliseconds while using well under 1% of a core.
const (
	pollFirst = 500 * time.Microsecond
	pollMax   = 8 * time.Millisecond
)

// WaitOccupied waits until something accepts TCP connections on addr (on
// any address its host resolves to: for [Localhost], 127.0.0.1 or ::1) and
// returns nil. When ctx ends first it returns a [*WaitError]; put the
// timeout in ctx (context.WithTimeout). Each connection attempt is bounded
// by ctx too.
func WaitOccupied(ctx context.Context, addr HostPort) error {
	return wait(ctx, addr, "occupied", func(ctx context.Context) (bool, error) {
		_, busy, err := acceptingIP(ctx, addr)
		return busy, err
	})
}

// Available reports whether addr is free in the strict sense that [WaitFree]
// waits for: nothing accepts connections on it and, for a host of this
// machine, a server could bind the port now.
func Available(ctx context.Context, addr HostPort) (bool, error) {
	_, busy, err := acceptingIP(ctx, addr)
	if err != nil || busy {
		return false, err
	}
	return bindable(ctx, addr)
}

// WaitFree waits until addr is free in the strict sense: nothing accepts
// connections on it and, for a host of this machine, a server could bind
// the port again (see [CanBind]), so a script that waits for free and then
// starts a server does not fail. When ctx ends first it returns a [*WaitError].
func WaitFree(ctx context.Context, addr HostPort) error {
	return wait(ctx, addr, "free", func(ctx context.Context) (bool, error) { return Available(ctx, addr) })
}

// wait polls done with a short, bounded backoff until it reports true, it
// fails, or ctx ends.
func wait(ctx context.Context, addr HostPort, state string, done func(context.Context) (bool, error)) error {
	start := time.Now()
	pause := backoff.New(pollFirst, pollMax)
	for {
		ok, err := done(ctx)
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return &WaitError{Addr: addr, State: state, Waited: time.Since(start), Err: cmp.Or(ctx.Err(), context.DeadlineExceeded)}
		}
		if err != nil {
			return fmt.Errorf("wait for %s to be %s: %w", addr, state, err)
		}
		if ok {
			return nil
		}
		if err := pause.Wait(ctx); err != nil {
			return &WaitError{Addr: addr, State: state, Waited: time.Since(start), Err: err}
		}
	}
}

// Resolve turns a target into an address: an address as [ParseHostPort]
// reads it ("host:port", "[v6]:port", ":port", "8080"), or else the id of
// an assignment, meaning localhost and its port. A bare number out of range
// gives a [*TargetPortError]; an unknown id gives an error wrapping
// [ErrNotFound]. [Registry.ResolveTarget] reads URLs and sockets too.
func (r *Registry) Resolve(ctx context.Context, target string) (HostPort, error) {
	hp, err := ParseHostPort(target)
	if err == nil {
		return hp, nil
	}
	if isDigits(target) {
		return HostPort{}, &TargetPortError{Input: target}
	}
	if ValidateID(target) != nil {
		return HostPort{}, err // neither: report it as the address it resembles
	}
	a, lerr := r.Lookup(ctx, target)
	if lerr != nil {
		return HostPort{}, lerr
	}
	return HostPort{Host: Localhost, Port: a.Port}, nil
}
