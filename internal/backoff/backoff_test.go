package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestNextDoublesUpToTheCeiling(t *testing.T) {
	b := New(time.Millisecond, 5*time.Millisecond)
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{ms, 2 * ms, 4 * ms, 5 * ms, 5 * ms}, got)

	b = New(time.Second, time.Millisecond)
	assert.Equal(t, time.Millisecond, b.Next(), "a first wait above the ceiling is cut to it")
}

func TestWaitSleepsTheWholeWaitWhileTheContextLives(t *testing.T) {
	b := New(2*time.Millisecond, time.Second)
	start := time.Now()
	assert.NoError(t, b.Wait(context.Background()))
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Millisecond)
	assert.Equal(t, 4*time.Millisecond, b.Next(), "Wait moved on")
}

func TestWaitEndsWhenTheContextDoes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := New(time.Hour, time.Hour)
	assert.ErrorIs(t, b.Wait(ctx), context.Canceled, "a done context: no wait at all")

	ctx, cancel = context.WithCancel(context.Background())
	go cancel()
	assert.ErrorIs(t, b.Wait(ctx), context.Canceled, "cancelled while waiting an hour")

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, b.Wait(ctx), context.DeadlineExceeded)
}
