// Package backoff paces a retry loop: waits that start short and double up
// to a ceiling, and end early when a context does.
package backoff

import (
	"context"
	"time"
)

// Backoff hands out the waits of one retry loop: first, then twice the one
// before, never more than the ceiling. Make one with [New] for each loop.
type Backoff struct{ delay, ceiling time.Duration }

// New returns a Backoff whose waits are first, 2*first, 4*first … up to
// ceiling. Both should be positive.
func New(first, ceiling time.Duration) Backoff {
	return Backoff{delay: min(first, ceiling), ceiling: ceiling}
}

// Next returns the next wait and moves on to the one after it.
func (b *Backoff) Next() time.Duration {
	d := b.delay
	b.delay = min(2*b.delay, b.ceiling)
	return d
}

// Wait sleeps for [Backoff.Next], or less when ctx is done first, and
// returns ctx.Err(): nil only when ctx is still live after the full wait.
func (b *Backoff) Wait(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
