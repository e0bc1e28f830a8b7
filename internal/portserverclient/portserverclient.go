// Package portserverclient asks a port server for a port, as portpicker's
// client does: it connects to the Unix socket named by PORTSERVER_ADDRESS,
// sends its pid in ASCII and a newline, and reads back a port and a
// newline. `portfor pick` and registry/registrytest use it; `portfor
// serve` is the server (cmd/portfor/internal/portserver).
package portserverclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portfor/portfor/internal/peercred"
)

// EnvAddress names the environment variable that gives a port server's
// address, as portpicker reads it: "@name" for a Linux abstract socket,
// else a socket file's path.
const EnvAddress = "PORTSERVER_ADDRESS"

// MinAnswer is the lowest port Ask accepts: ports below it are privileged
// (a service such as ssh), which no port server of ours hands out.
const MinAnswer = 1024

// Ask requests a port from the server at address for pid, as portpicker's
// client does: it returns the port, or an error when the server answers
// nothing usable. A server that has not answered when ctx ends is an
// error wrapping ctx's (context.DeadlineExceeded or context.Canceled).
//
// Anyone may bind a socket name first, so Ask trusts only a server run by
// the caller's own user or by root, as the kernel reports it (where it
// cannot tell, Ask refuses), and only answers from MinAnswer to 65535: a
// squatter cannot hand out port 22.
func Ask(ctx context.Context, address string, pid int) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", address)
	if err != nil {
		return 0, fmt.Errorf("port server %s: %w", address, err)
	}
	defer c.Close()
	p, ok := peercred.Of(c)
	if !ok {
		return 0, fmt.Errorf("port server %s: cannot tell which user runs it on this system, so its answers are not trusted", address)
	}
	if me := os.Geteuid(); p.UID != 0 && p.UID != me {
		return 0, fmt.Errorf("port server %s: run by %s, neither you (uid %d) nor root: not trusting its answers", address, p, me)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// A context ended without a deadline (cancelled: `portfor pick` on
	// SIGTERM) must end the wait too: unblock the read by expiring it.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A request or a wait for the answer cut short by ctx says so, and
	// wraps ctx's error: the connection's deadline is ctx's, and may be
	// seen a moment before ctx's own timer ends it.
	ended := func(err error) error {
		cause := ctx.Err()
		if cause == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			cause = context.DeadlineExceeded
		}
		if cause == nil {
			return nil
		}
		return fmt.Errorf("port server %s: no answer for pid %d: %w", address, pid, cause)
	}
	if _, err := fmt.Fprintf(c, "%d\n", pid); err != nil {
		if e := ended(err); e != nil {
			return 0, e
		}
		return 0, fmt.Errorf("port server %s: %w", address, err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil {
		if e := ended(err); e != nil {
			return 0, e
		}
		return 0, fmt.Errorf("port server %s: no port for pid %d", address, pid)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("port server %s: answered %q", address, strings.TrimSpace(line))
	}
	if port < MinAnswer {
		return 0, fmt.Errorf("port server %s: answered port %d, below %d: not a port it may hand out", address, port, MinAnswer)
	}
	return port, nil
}
