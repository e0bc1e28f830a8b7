package registry

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/portfor/portfor/internal/httpget"
)

// TestWaitHTTPSNeedsTheTLSPackage: without package registry/https an https
// wait fails at once, naming what to import; http waits are unaffected.
func TestWaitHTTPSNeedsTheTLSPackage(t *testing.T) {
	saved := httpget.TLSClient
	defer func() { httpget.TLSClient = saved }()
	httpget.TLSClient = nil
	// A context that has ended: an error about it would mean the wait began.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WaitHTTP(ctx, "https://localhost:1/", WaitOptions{})
	assert.ErrorIs(t, err, ErrNoTLS)
	assert.EqualError(t, err, "wait for https://localhost:1/: https needs a TLS client: import github.com/portfor/portfor/registry/https")
	tg, err := ParseTarget("https://localhost:1/")
	assert.NoError(t, err)
	assert.ErrorIs(t, WaitTarget(ctx, tg, StateOccupied, WaitOptions{}), ErrNoTLS)
}
