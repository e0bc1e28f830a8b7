package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/portfor/portfor/internal/backoff"
	"github.com/portfor/portfor/internal/httpget"
	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/internal/oneline"
)

// The states a wait can wait for.
const (
	StateOccupied = "occupied" // something accepts (and, for HTTP, answers)
	StateFree     = "free"     // nothing accepts
)

// ErrNoTLS is returned (wrapped) by [WaitHTTP] and [WaitTarget] for an
// https:// URL in a program that does not import package
// github.com/portfor/portfor/registry/https, which brings the TLS client.
var ErrNoTLS = httpget.ErrNoTLS

// DefaultAttemptTimeout bounds one HTTP request of a wait when
// [WaitOptions].AttemptTimeout is zero.
const DefaultAttemptTimeout = 2 * time.Second

// WaitOptions tune [WaitTarget] and [WaitHTTP]. The zero value waits for
// any answer below 400, verifying certificates.
type WaitOptions struct {
	// Status is the set of HTTP status codes that count as ready; empty
	// means 100-399. Redirects are not followed: a 3xx is an answer.
	Status StatusSet
	// Insecure skips TLS certificate verification for https:// targets.
	Insecure bool
	// AttemptTimeout bounds one HTTP request (connect, TLS, headers);
	// zero means DefaultAttemptTimeout. A request never outlives the wait's
	// context either.
	AttemptTimeout time.Duration
}

// TargetWaitError is returned by [WaitHTTP], [WaitUnix], [WaitUnixFree]
// (and [WaitTarget] for those kinds) when the context ends before the
// target is ready. It says what the last attempt saw. It unwraps to the
// context's error and, for a deadline, to [ErrTimeout].
type TargetWaitError struct {
	Target Target
	State  string        // StateOccupied or StateFree
	Waited time.Duration // how long the wait lasted
	Last   string        // what the last attempt saw, e.g. "answer 503 Service Unavailable"
	Err    error         // the context's error
}

// Error returns e.g. "http://localhost:8080/health not ready (waited 5s):
// last answer 503 Service Unavailable.".
func (e *TargetWaitError) Error() string {
	what := "not ready"
	if e.State == StateFree {
		what = "not free"
	}
	how := "waited"
	if errors.Is(e.Err, context.Canceled) {
		how = "canceled after"
	}
	last := ""
	if e.Last != "" {
		last = ": last " + e.Last
	}
	return fmt.Sprintf("%s %s (%s %s)%s.", e.Target, what, how, e.Waited.Round(time.Millisecond), last)
}

// Unwrap returns ErrTimeout (for a deadline) and the context's error.
func (e *TargetWaitError) Unwrap() []error {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return []error{ErrTimeout, e.Err}
	}
	return []error{e.Err}
}

// WaitTarget waits until t is in state (StateOccupied or StateFree) and
// returns nil. For a TCP target it is [WaitOccupied] or [WaitFree]. For an
// HTTP target, occupied is [WaitHTTP] and free is [WaitFree] on the URL's
// host and port: nothing accepts connections there (a port that answers
// 503 is not free). For a Unix socket it is [WaitUnix] or [WaitUnixFree].
// Put the timeout in ctx.
func WaitTarget(ctx context.Context, t Target, state string, opts WaitOptions) error {
	if state != StateOccupied && state != StateFree {
		return fmt.Errorf("wait for %s: state %q is neither %s nor %s", t, state, StateOccupied, StateFree)
	}
	free := state == StateFree
	switch t.Kind {
	case TargetTCP:
		if free {
			return WaitFree(ctx, t.Addr)
		}
		return WaitOccupied(ctx, t.Addr)
	case TargetHTTP:
		if free {
			return WaitFree(ctx, t.Addr)
		}
		return waitHTTP(ctx, t, opts)
	case TargetUnix:
		if free {
			return WaitUnixFree(ctx, t.Path)
		}
		return WaitUnix(ctx, t.Path)
	}
	return fmt.Errorf("wait for %s: unknown target kind %v", t, t.Kind)
}

// TargetAvailable reports whether t is free in the sense [WaitTarget]
// waits for: for TCP and HTTP targets as [Available] on the host and port,
// for a Unix socket when nothing accepts a connection on it.
func TargetAvailable(ctx context.Context, t Target) (bool, error) {
	if t.Kind == TargetUnix {
		ok, _, err := unixAccepting(ctx, t.Path)
		return !ok, err
	}
	return Available(ctx, t.Addr)
}

// WaitHTTP waits until a GET of rawURL (http:// or https://) answers with a
// status in opts.Status (below 400 by default) and returns nil.
//
// Until something accepts on the URL's port, each attempt is the same fast
// connect as [WaitOccupied]'s, with the same backoff (0.5 ms doubling to
// 8 ms; for [Localhost] both 127.0.0.1 and ::1), so a new server is noticed
// as soon. Then the GET goes to the address that accepted, on a fresh
// connection each time (no keep-alive), bounded by opts.AttemptTimeout;
// while the server answers but is not ready, requests are at least 25 ms
// apart so as not to flood a server that is starting. No proxy is used, whatever
// HTTP_PROXY says: the wait asks whether the service answers from here.
// Redirects are not followed, so a 3xx answer counts as below 400. For an
// https:// URL the program must import package
// github.com/portfor/portfor/registry/https, or WaitHTTP returns an error
// wrapping [ErrNoTLS] at once. A user
// and password in the URL (http://user:pw@host/) are sent as Basic
// authentication. Only the status line of the answer is read (HTTP/1.1;
// informational 1xx answers are skipped), never its body.
//
// When ctx ends first it returns a [*TargetWaitError] saying what was last
// seen, e.g. "connection refused" or "answer 503 Service Unavailable".
func WaitHTTP(ctx context.Context, rawURL string, opts WaitOptions) error {
	t, err := parseHTTPTarget(rawURL)
	if err != nil {
		return fmt.Errorf("wait for %s: %w", rawURL, err)
	}
	return waitHTTP(ctx, t, opts)
}

func waitHTTP(ctx context.Context, t Target, opts WaitOptions) error {
	p, err := newHTTPProber(t, opts)
	if err != nil {
		return err
	}
	return poll(ctx, t, StateOccupied, p.ready, p.minPause)
}

// httpProber asks one HTTP target whether it is ready.
type httpProber struct {
	target  Target
	url     *url.URL
	opts    WaitOptions
	tls     *httpget.TLS // nil for http://
	timeout time.Duration

	accepted map[netip.Addr]bool // addresses that have accepted a connection
	answered bool                // the last attempt got an answer or an error after connecting
}

// answerPause is the least pause between HTTP requests to a server that
// answers but is not ready yet: it is starting, so do not flood it.
const answerPause = 25 * time.Millisecond

func newHTTPProber(t Target, opts WaitOptions) (*httpProber, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", t, err)
	}
	var conf *httpget.TLS
	if u.Scheme == "https" {
		if httpget.TLSClient == nil {
			return nil, fmt.Errorf("wait for %s: %w", t, ErrNoTLS)
		}
		// The request goes to an IP; verify the name asked for.
		conf = &httpget.TLS{ServerName: t.Addr.Host, Insecure: opts.Insecure}
	}
	timeout := opts.AttemptTimeout
	if timeout <= 0 {
		timeout = DefaultAttemptTimeout
	}
	return &httpProber{target: t, url: u, opts: opts, tls: conf, timeout: timeout, accepted: map[netip.Addr]bool{}}, nil
}

// ready makes one attempt: it asks each address of the host in turn until
// one answers ready. Until an address has accepted a connection it is
// probed first with the cheap connect of [WaitOccupied]; after that the
// GET goes straight to it, so that a server that accepts but is not ready
// yet sees requests only, not empty connections (which TLS servers log).
func (p *httpProber) ready(ctx context.Context) (bool, string, error) {
	ips, err := resolve(ctx, p.target.Addr.Host)
	if err != nil {
		return false, "", err
	}
	last := ""
	p.answered = false
	for _, ip := range ips {
		if !p.accepted[ip] {
			ok, err := netprobe.Accepting(ctx, ip, p.target.Addr.Port)
			if err != nil {
				return false, "", fmt.Errorf("connect %s: %w", netip.AddrPortFrom(ip, uint16(p.target.Addr.Port)), err)
			}
			if !ok {
				continue
			}
			p.accepted[ip] = true
		}
		code, err := p.get(ctx, ip)
		if ctx.Err() != nil {
			return false, last, ctx.Err()
		}
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				delete(p.accepted, ip) // gone again: back to probing
				continue
			}
			p.answered = true
			last = oneline.Clean(err.Error()) // a certificate's names are the server's text
			continue
		}
		p.answered = true
		last = fmt.Sprintf("answer %d %s", code, httpget.StatusText(code))
		if p.opts.Status.Contains(code) {
			return true, last, nil
		}
	}
	if last == "" {
		last = "connection refused"
	}
	return false, last, nil
}

// minPause is the least pause before the next attempt: once the server
// answers (not ready yet), at most 1/answerPause requests a second.
func (p *httpProber) minPause() time.Duration {
	if p.answered {
		return answerPause
	}
	return 0
}

// get sends one GET to ip and returns the status code, or why there was none.
func (p *httpProber) get(ctx context.Context, ip netip.Addr) (int, error) {
	actx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	code, err := httpget.Status(actx, httpget.Request{
		Addr:          netip.AddrPortFrom(ip, uint16(p.target.Addr.Port)),
		Host:          p.url.Host, // the Host header as the URL gave it
		Target:        p.url.RequestURI(),
		TLS:           p.tls,
		UserAgent:     "portfor-wait",
		Authorization: basicAuth(p.url.User),
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			attempt, _ := actx.Deadline()
			if dl, ok := ctx.Deadline(); ok && !dl.After(attempt) {
				// The wait's own deadline came first (its timer and the
				// attempt's fire in either order).
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("error: no answer within %s", p.timeout)
		}
		return 0, fmt.Errorf("error: %w", err)
	}
	return code, nil
}

// basicAuth returns the Authorization header for the user and password of
// a URL (http://user:pw@host/), or "" when it has none.
func basicAuth(u *url.Userinfo) string {
	if u == nil {
		return ""
	}
	pw, _ := u.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw))
}

// WaitUnix waits until the Unix stream socket at path accepts a connection
// (the connection is closed at once) and returns nil, polling with the
// same backoff as [WaitOccupied]. A missing file or a refused connection
// means not yet. When ctx ends first it returns a [*TargetWaitError].
func WaitUnix(ctx context.Context, path string) error {
	return poll(ctx, Target{Kind: TargetUnix, Path: path}, StateOccupied, func(ctx context.Context) (bool, string, error) {
		return unixAccepting(ctx, path)
	}, nil)
}

// WaitUnixFree waits until nothing accepts connections on the Unix socket
// at path: the file is gone or connections are refused. A socket file left
// behind by a server that has exited counts as free, though a new server
// may have to remove it before it can bind. When ctx ends first it returns
// a [*TargetWaitError].
func WaitUnixFree(ctx context.Context, path string) error {
	return poll(ctx, Target{Kind: TargetUnix, Path: path}, StateFree, func(ctx context.Context) (bool, string, error) {
		ok, last, err := unixAccepting(ctx, path)
		if ok {
			last = "a connection was accepted"
		}
		return !ok && err == nil, last, err
	}, nil)
}

// unixAccepting connects to the Unix socket at path once.
func unixAccepting(ctx context.Context, path string) (ok bool, last string, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return true, "connection accepted", nil
	}
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	switch {
	case errors.Is(err, syscall.ENOENT):
		return false, "connect: no such file", nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return false, "connect: connection refused", nil
	case errors.Is(err, syscall.EAGAIN):
		return true, "backlog full", nil // a listener that has no room yet is still a listener
	case errors.Is(err, syscall.EINVAL) && len(path) >= 104:
		return false, "", fmt.Errorf("connect unix:%s: the path is %d bytes, more than a Unix socket address holds (%w)", path, len(path), err)
	}
	return false, "", fmt.Errorf("connect unix:%s: %w", path, err)
}

// poll calls check with the waits' backoff until it reports true, it fails,
// or ctx ends (a [*TargetWaitError] with check's last word). minPause, if
// not nil, sets a floor under the next pause.
func poll(ctx context.Context, t Target, state string, check func(context.Context) (bool, string, error), minPause func() time.Duration) error {
	start := time.Now()
	pause := backoff.New(pollFirst, pollMax)
	last := ""
	for {
		ok, seen, err := check(ctx)
		if seen != "" {
			last = seen
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return &TargetWaitError{Target: t, State: state, Waited: time.Since(start), Last: last, Err: contextErr(ctx)}
		}
		if err != nil {
			return fmt.Errorf("wait for %s to be %s: %w", t, state, err)
		}
		if ok {
			return nil
		}
		d := pause.Next()
		if minPause != nil {
			d = max(d, minPause())
		}
		if err := sleep(ctx, d); err != nil {
			return &TargetWaitError{Target: t, State: state, Waited: time.Since(start), Last: last, Err: err}
		}
	}
}

// sleep waits d, or less when ctx ends first, and returns ctx.Err().
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
	return ctx.Err()
}

func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}
