// Package lsof runs the lsof command within bounds: its output is capped and
// its run time limited, so that a hung or runaway lsof can neither hang nor
// swamp portfor. It finds lsof in PATH, else at /usr/sbin/lsof, where macOS
// ships it and which some PATHs (launchd's, cron's) leave out.
//
// It is how sockdiag and procinfo learn on macOS what Linux tells through
// netlink and /proc: macOS has libproc for this, but libproc is reached only
// through cgo, which portfor does without.
package lsof

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

const (
	// MaxOutput is the most standard output Run takes from one lsof: a
	// few thousand sockets' worth. More is an error, never a cut answer.
	MaxOutput = 4 << 20
	// Timeout bounds one run; a context with an earlier deadline bounds it
	// sooner.
	Timeout = 30 * time.Second

	maxStderr = 4 << 10
	// waitDelay is how long Run waits, after lsof is killed or exits, for
	// the pipes to close: lsof's own children (Linux lsof forks to stat
	// files with a timeout) may hold them.
	waitDelay = time.Second
)

// fallback is where lsof is looked for when PATH has none.
const fallback = "/usr/sbin/lsof"

// Path returns the lsof to run: the one in PATH, else /usr/sbin/lsof; an
// error wrapping exec.ErrNotFound when neither exists.
func Path() (string, error) {
	if p, err := exec.LookPath("lsof"); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath(fallback); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("lsof not found in PATH nor at %s: %w", fallback, exec.ErrNotFound)
}

// Run runs lsof with args and returns what it printed on standard output.
//
// lsof exits with status 1 both on errors and when a search item found
// nothing (a port nothing listens on, a pid that has exited), even when
// others found something. Run takes status 1 with nothing on standard error
// as success, so callers should pass -w (no warnings) and expect any
// output, maybe none. Any other failure, more than MaxOutput bytes of
// output, or a run longer than Timeout is an error.
func Run(ctx context.Context, args ...string) ([]byte, error) {
	path, err := Path()
	if err != nil {
		return nil, err
	}
	return run(ctx, path, MaxOutput, Timeout, args)
}

func run(ctx context.Context, path string, maxOut int, timeout time.Duration, args []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = waitDelay
	stdout := &capped{max: maxOut, fail: true}
	stderr := &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	what := "lsof " + strings.Join(args, " ")
	switch {
	case stdout.over:
		return nil, fmt.Errorf("%s: more than %d bytes of output", what, maxOut)
	case err == nil:
		return stdout.buf.Bytes(), nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: killed, not done in time: %w", what, ctx.Err())
	}
	msg := firstLine(stderr.buf.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 && msg == "" {
		return stdout.buf.Bytes(), nil
	}
	if msg != "" {
		return nil, fmt.Errorf("%s: %w: %s", what, err, msg)
	}
	return nil, fmt.Errorf("%s: %w", what, err)
}

// firstLine returns the first non-blank line of s, trimmed.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// capped keeps up to max bytes. Past that it fails the write when fail is
// set (the copy from lsof's pipe stops, the pipe closes, and lsof dies of
// SIGPIPE), else it drops the rest quietly.
type capped struct {
	buf  bytes.Buffer
	max  int
	fail bool
	over bool
}

var errTooMuch = errors.New("output over the limit")

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) <= room {
		return c.buf.Write(p)
	}
	c.over = true
	if c.fail {
		return 0, errTooMuch
	}
	c.buf.Write(p[:max(room, 0)])
	return len(p), nil
}
