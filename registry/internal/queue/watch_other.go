//go:build !linux

package queue

import (
	"context"
	"time"
)

// watch is polling alone here.
type watch struct{}

func newWatch(string) *watch { return nil }

func (w *watch) wait(ctx context.Context, d time.Duration) { sleep(ctx, d) }

func (w *watch) close() {}
