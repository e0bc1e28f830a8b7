package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// signalContext is canceled by SIGINT or SIGTERM, but installs its signal
// handler only when something first waits on it (calls Done). Installing
// one starts a goroutine and an OS thread, which was measured at a quarter
// of the whole process's run time for `portfor NAME` on a known name, a
// call that never waits. Until then a signal ends the process the default
// way, which leaves nothing behind: flocks die with the process and every
// registry write is one atomic transaction.
type signalContext struct {
	once sync.Once
	mu   sync.Mutex
	ctx  context.Context
	cncl context.CancelFunc
}

func newSignalContext() *signalContext { return &signalContext{} }

func (c *signalContext) install() context.Context {
	c.once.Do(func() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		c.mu.Lock()
		c.ctx, c.cncl = ctx, stop
		c.mu.Unlock()
	})
	return c.ctx
}

// installed returns the signal context, or nil before anything waited.
func (c *signalContext) installed() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctx
}

// Deadline reports no deadline.
func (c *signalContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done installs the signal handler and returns its channel.
func (c *signalContext) Done() <-chan struct{} { return c.install().Done() }

// Err is nil until a signal arrives after the handler was installed.
func (c *signalContext) Err() error {
	if ctx := c.installed(); ctx != nil {
		return ctx.Err()
	}
	return nil
}

// Value carries no values.
func (c *signalContext) Value(any) any { return nil }

// stop restores default signal handling.
func (c *signalContext) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cncl != nil {
		c.cncl()
	}
}
