//go:build unix

package lsof

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fake writes a shell script standing in for lsof.
func fake(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lsof")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunExitStatus(t *testing.T) {
	for _, c := range []struct {
		name, body, out, err string
	}{
		{"found", `printf 'p1\nf3\n'`, "p1\nf3\n", ""},
		{"nothing found", `exit 1`, "", ""},
		{"some items not found", `printf 'p1\n'; exit 1`, "p1\n", ""},
		{"error", `echo 'lsof: illegal option character: Q' >&2; echo 'lsof 4.91' >&2; exit 1`, "", "illegal option character: Q"},
		{"other status", `printf 'p1\n'; exit 2`, "", "exit status 2"},
		{"killed", `kill -9 $$`, "", "signal: killed"},
	} {
		out, err := run(context.Background(), fake(t, c.body), 1<<10, 10*time.Second, []string{"-w"})
		if c.err == "" {
			if err != nil || string(out) != c.out {
				t.Errorf("%s: %q, %v; want %q", c.name, out, err, c.out)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "lsof -w") {
			t.Errorf("%s: %q, %v; want an error naming the command and saying %q", c.name, out, err, c.err)
		}
	}
}

// TestRunBounds checks that a runaway lsof is cut off: one printing without
// end fails once past the cap, one that hangs once past the timeout.
func TestRunBounds(t *testing.T) {
	start := time.Now()
	_, err := run(context.Background(), fake(t, `exec yes`), 64<<10, time.Minute, nil)
	if err == nil || !strings.Contains(err.Error(), "more than 65536 bytes") {
		t.Errorf("endless output: %v", err)
	}
	_, err = run(context.Background(), fake(t, `exec sleep 30`), 1<<10, 200*time.Millisecond, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung lsof: %v, want a deadline error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = run(ctx, fake(t, `exec sleep 30`), 1<<10, time.Minute, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the bounded runs took %v", d)
	}
}
