package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portfor/portfor/internal/httpget"
	"github.com/portfor/portfor/registry"
)

// httpsHelperName is the companion command that waits on https:// URLs, so
// that portfor does not link crypto/tls (see package registry/https): its
// packages' initialisation would cost every portfor call about two
// milliseconds, for the rare wait that needs it.
const httpsHelperName = "portfor-https"

// httpsHelper finds portfor-https: $PORTFOR_HTTPS if set, else beside
// this executable (where 'go install …/cmd/...' puts it), else in $PATH.
func httpsHelper() (string, error) {
	if p := os.Getenv("PORTFOR_HTTPS"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("https:// waits run PORTFOR_HTTPS=%s: %w", p, err)
		}
		return p, nil
	}
	self, err := os.Executable()
	if err == nil {
		beside := filepath.Join(filepath.Dir(self), httpsHelperName)
		if _, err := exec.LookPath(beside); err == nil {
			return beside, nil
		}
	}
	p, err := exec.LookPath(httpsHelperName)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, exec.ErrDot) {
		return "", fmt.Errorf("https:// waits run %s, found only through '.' in PATH, which is not trusted: install it beside portfor, or set PORTFOR_HTTPS", httpsHelperName)
	}
	v := "latest"
	if bi, ok := debug.ReadBuildInfo(); ok && strings.HasPrefix(bi.Main.Version, "v") && !strings.Contains(bi.Main.Version, "+dirty") {
		v = bi.Main.Version
	}
	return "", fmt.Errorf("https:// waits run %s, which is not installed (neither beside portfor nor in PATH): "+
		"go install github.com/portfor/portfor/cmd/%s@%s", httpsHelperName, httpsHelperName, v)
}

// needsHTTPSHelper reports whether waiting for t to reach state takes TLS
// that this program does not have.
func needsHTTPSHelper(t registry.Target, state string) bool {
	return t.IsHTTPS() && state == registry.StateOccupied && httpget.TLSClient == nil
}

// waitHTTPS waits for the https target t with the helper at path, which
// runs until ctx's deadline or until ctx is canceled (then it is sent
// SIGTERM) and says in one line how the wait ended. The error is what
// registry.WaitTarget would have returned.
func waitHTTPS(ctx context.Context, path string, t registry.Target, opts registry.WaitOptions) error {
	args := []string{"-report"}
	if dl, ok := ctx.Deadline(); ok {
		if dl.Before(time.Unix(0, math.MaxInt64)) {
			args = append(args, "-deadline", strconv.FormatInt(dl.UnixNano(), 10))
		} else {
			args = append(args, "-t", time.Until(dl).String()) // past 2262: no Unix nanoseconds
		}
	}
	if opts.Insecure {
		args = append(args, "-insecure")
	}
	if opts.Status != nil {
		args = append(args, "-status", opts.Status.String())
	}
	args = append(args, "--", t.URL)
	var out, errOut strings.Builder
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout = &limitedBuilder{b: &out, n: 4096}
	cmd.Stderr = &limitedBuilder{b: &errOut, n: 4096} // its own failures: quoted in ours, one line
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second // then it is killed
	start := time.Now()
	runErr := cmd.Run()
	line, _, _ := strings.Cut(out.String(), "\n")
	switch {
	case line == "ready":
		return nil
	case strings.HasPrefix(line, "last "):
		err := ctx.Err()
		if err == nil {
			err = context.DeadlineExceeded // the helper's clock said so first
		}
		return &registry.TargetWaitError{Target: t, State: registry.StateOccupied, Waited: time.Since(start),
			Last: strings.TrimPrefix(line, "last "), Err: err}
	case strings.HasPrefix(line, "error "):
		return errors.New(strings.TrimPrefix(line, "error "))
	}
	if ctx.Err() != nil {
		return &registry.TargetWaitError{Target: t, State: registry.StateOccupied, Waited: time.Since(start), Err: ctx.Err()}
	}
	why := "exited without a report"
	if runErr != nil {
		why = "ended without an answer: " + runErr.Error()
	}
	if said, _, _ := strings.Cut(strings.TrimSpace(errOut.String()), "\n"); said != "" {
		why += fmt.Sprintf(" (it said %q)", said) // the first line: an older helper's usage is long
	}
	return fmt.Errorf("wait for %s: %s %s", t, path, why)
}

// limitedBuilder keeps the first n bytes written to it and drops the rest.
type limitedBuilder struct {
	b *strings.Builder
	n int
}

func (l *limitedBuilder) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
