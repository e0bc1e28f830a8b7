package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/portrange"
)

// TargetKind says what a [Target] waits for.
type TargetKind int

const (
	// TargetTCP is a TCP address: ready when something accepts connections.
	TargetTCP TargetKind = iota
	// TargetHTTP is an http:// or https:// URL: ready when a GET answers
	// with a status the wait accepts (below 400 unless told otherwise).
	TargetHTTP
	// TargetUnix is a Unix stream socket: ready when it accepts a connection.
	TargetUnix
)

// String returns "tcp", "http" or "unix".
func (k TargetKind) String() string {
	switch k {
	case TargetTCP:
		return "tcp"
	case TargetHTTP:
		return "http"
	case TargetUnix:
		return "unix"
	}
	return fmt.Sprintf("TargetKind(%d)", int(k))
}

// Target is something a wait can wait for: a TCP address, an HTTP(S) URL
// or a Unix socket. Make one with [ParseTarget] or [Registry.ResolveTarget].
type Target struct {
	Kind TargetKind
	// Addr is the host and port connected to, for TargetTCP and TargetHTTP
	// (for a URL without a port: 80 for http, 443 for https).
	Addr HostPort
	// URL is the URL asked for, for TargetHTTP: scheme http or https,
	// never empty path ("/" at least).
	URL string
	// Path is the socket's file name, for TargetUnix.
	Path string
}

// String returns the target as [ParseTarget] reads it: "localhost:8080",
// "http://localhost:8080/health" or "unix:/run/app.sock". A password in a
// URL shows as "xxxxx", as url.URL.Redacted writes it: String is what
// errors and progress lines print, and logs keep them.
func (t Target) String() string {
	switch t.Kind {
	case TargetHTTP:
		if strings.Contains(t.URL, "@") {
			if u, err := url.Parse(t.URL); err == nil {
				return u.Redacted()
			}
		}
		return t.URL
	case TargetUnix:
		return "unix:" + t.Path
	}
	return t.Addr.String()
}

// IsHTTPS reports whether t is an https:// URL.
func (t Target) IsHTTPS() bool { return t.Kind == TargetHTTP && strings.HasPrefix(t.URL, "https:") }

// ParseTarget reads a target without a registry: an address as
// [ParseHostPort] reads it ("host:port", "[v6]:port", ":port", "8080"), an
// http:// or https:// URL with a host (IP literal or DNS name) and an
// optional port, or "unix:" and a socket path ("unix:/run/app.sock";
// "unix:///run/app.sock" is the same). The error wraps [ErrInvalidAddress];
// for a bare number out of range it is a [*PortError] wrapping
// [ErrInvalidPort] too.
func ParseTarget(s string) (Target, error) {
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		return parseHTTPTarget(s)
	case strings.HasPrefix(lower, "unix:"):
		path := s[len("unix:"):]
		if strings.HasPrefix(path, "//") {
			path = path[2:] // unix:///run/app.sock
			if !strings.HasPrefix(path, "/") {
				// unix://host/path: no host is reached, and the rest is no
				// relative path either.
				return Target{}, &AddressError{Input: s, Reason: "a unix: target has no host: write unix:/PATH or unix:///PATH"}
			}
		}
		if path == "" {
			return Target{}, &AddressError{Input: s, Reason: "no socket path after unix:"}
		}
		if strings.IndexByte(path, 0) >= 0 {
			return Target{}, &AddressError{Input: s, Reason: "socket path contains a NUL byte"}
		}
		return Target{Kind: TargetUnix, Path: path}, nil
	}
	hp, err := ParseHostPort(s)
	if err != nil {
		if isDigits(s) {
			return Target{}, &TargetPortError{Input: s}
		}
		return Target{}, err
	}
	return Target{Kind: TargetTCP, Addr: hp}, nil
}

// TargetPortError is returned for a target that is a bare number outside
// 1-65535. It unwraps to [ErrInvalidAddress] and [ErrInvalidPort].
type TargetPortError struct{ Input string }

// Error returns e.g. `invalid port "65536": want a number from 1 to 65535`.
func (e *TargetPortError) Error() string {
	return fmt.Sprintf("invalid port %q: want a number from 1 to %d", e.Input, portrange.MaxPort)
}

// Unwrap returns ErrInvalidAddress and ErrInvalidPort.
func (e *TargetPortError) Unwrap() []error { return []error{ErrInvalidAddress, ErrInvalidPort} }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseHTTPTarget reads an http:// or https:// URL.
func parseHTTPTarget(s string) (Target, error) {
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, &AddressError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(s)
	if err != nil {
		authority, _, _ := strings.Cut(s[strings.Index(s, "//")+2:], "/")
		if strings.Count(authority, ":") > 1 && !strings.Contains(authority, "[") {
			return bad("an IPv6 address needs brackets, as in http://[::1]:8080/")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Opaque != "" || u.Host == "" {
		return bad("no host after %s://", u.Scheme)
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return bad("an IPv6 zone is not supported")
		}
		if ip.Is6() != strings.HasPrefix(u.Host, "[") {
			return bad("an IPv6 address needs brackets, as in http://[::1]:8080/")
		}
		host = ip.String()
	} else if strings.HasPrefix(u.Host, "[") {
		return bad("%q in brackets is not an IPv6 address", host)
	} else if reason := checkHostName(host); reason != "" {
		return bad("%s", reason)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 1 || p > portrange.MaxPort {
			return bad("port %q is not a number from 1 to 65535", ps)
		}
		port = p
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	if u.Path == "" && u.RawPath == "" {
		u.Path = "/"
	}
	u.Fragment, u.RawFragment = "", ""
	// A space or a byte beyond ASCII in the query is taken as typed, and
	// sent percent-encoded: the request line cannot carry it raw.
	u.RawQuery = escapeQuery(u.RawQuery)
	return Target{Kind: TargetHTTP, Addr: HostPort{Host: host, Port: port}, URL: u.String()}, nil
}

// TargetNotFoundError is returned by [Registry.ResolveTarget] for a word
// that is a valid name but no assignment's, and no address either. It
// unwraps to [ErrNotFound].
type TargetNotFoundError struct{ Target string }

// Error returns e.g. `"my-servce" is neither a registered name nor a host:port`.
func (e *TargetNotFoundError) Error() string {
	return fmt.Sprintf("%q is neither a registered name nor a host:port", e.Target)
}

// Unwrap returns ErrNotFound.
func (e *TargetNotFoundError) Unwrap() error { return ErrNotFound }

// ResolveTarget reads a target as [ParseTarget] does, and else as the id of
// an assignment: "my-service" means its port on [Localhost] (TargetTCP),
// and "my-service/health" means http://localhost:PORT/health for
// my-service's port (TargetHTTP). An id that itself contains '/' is taken
// whole when it is registered. An unknown id gives a
// [*TargetNotFoundError], which wraps [ErrNotFound].
func (r *Registry) ResolveTarget(ctx context.Context, target string) (Target, error) {
	t, err := ParseTarget(target)
	if err == nil || isDigits(target) || errors.Is(err, ErrInvalidPort) {
		return t, err
	}
	if ValidateID(target) != nil {
		return Target{}, err // neither: report it as the address it resembles
	}
	a, rest, lerr := r.LookupNamePath(ctx, target)
	if lerr != nil {
		return Target{}, lerr
	}
	if rest == "" {
		return Target{Kind: TargetTCP, Addr: HostPort{Host: Localhost, Port: a.Port}}, nil
	}
	t, err = parseHTTPTarget("http://" + Localhost + ":" + strconv.Itoa(a.Port) + rest)
	if err != nil {
		return Target{}, fmt.Errorf("%s: path after the name: %w", target, err)
	}
	return t, nil
}

// LookupNamePath reads s as NAME or NAME/REST for a registered NAME, the
// longest one that is s or ends before one of its '/' (a name that itself
// contains '/' is taken whole when it is registered). It returns NAME's
// assignment and the rest of s exactly as given: "" for s == NAME, else
// starting with the '/'. When no such NAME is registered, the error is a
// [*TargetNotFoundError] for the part of s before its first '/', which
// wraps [ErrNotFound], or that part's [*IDError] when it is no valid name.
func (r *Registry) LookupNamePath(ctx context.Context, s string) (Assignment, string, error) {
	if ValidateID(s) == nil {
		a, err := r.Lookup(ctx, s)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return a, "", err
		}
	}
	name := s
	for {
		i := strings.LastIndexByte(name, '/')
		if i <= 0 {
			first, _, _ := strings.Cut(s, "/")
			if first != "" {
				if err := ValidateID(first); err != nil {
					return Assignment{}, "", err
				}
			}
			return Assignment{}, "", &TargetNotFoundError{Target: first}
		}
		name = name[:i]
		a, err := r.Lookup(ctx, name)
		if err == nil {
			return a, s[i:], nil
		}
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalidID) {
			return Assignment{}, "", err
		}
	}
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ First, Last int }

// StatusSet is the HTTP status codes an HTTP wait accepts as ready, as
// [ParseStatus] reads it. The empty set means every status below 400.
type StatusSet []StatusRange

// DefaultStatus is what an empty [StatusSet] stands for: 100-399.
var DefaultStatus = StatusSet{{First: 100, Last: 399}}

// ParseStatus reads a comma-separated list of HTTP status codes, ranges and
// classes, e.g. "200-299", "200,204", "2xx,304". Codes are 100-599; a range
// must not run backwards. The error wraps [ErrInvalidStatus].
func ParseStatus(s string) (StatusSet, error) {
	bad := func(format string, args ...any) (StatusSet, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidStatus, s, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty")
	}
	var set StatusSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if len(part) == 3 && (part[1:] == "xx" || part[1:] == "XX") && part[0] >= '1' && part[0] <= '5' {
			c := int(part[0]-'0') * 100
			set = append(set, StatusRange{c, c + 99})
			continue
		}
		first, last, isRange := strings.Cut(part, "-")
		a, ok := statusCode(first)
		if !ok {
			return bad("%q is not a status code from 100 to 599", first)
		}
		b := a
		if isRange {
			if b, ok = statusCode(last); !ok {
				return bad("%q is not a status code from 100 to 599", last)
			}
			if b < a {
				return bad("range %q runs backwards", part)
			}
		}
		set = append(set, StatusRange{a, b})
	}
	return set, nil
}

// ErrInvalidStatus is returned by [ParseStatus] for a list it cannot read.
var ErrInvalidStatus = errors.New("invalid status list")

func statusCode(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 3 || !isDigits(s) {
		return 0, false
	}
	n, _ := strconv.Atoi(s)
	return n, n >= 100 && n <= 599
}

// Contains reports whether code is in the set; the empty set holds every
// code from 100 to 399.
func (s StatusSet) Contains(code int) bool {
	if len(s) == 0 {
		s = DefaultStatus
	}
	for _, r := range s {
		if code >= r.First && code <= r.Last {
			return true
		}
	}
	return false
}

// String returns the set as ParseStatus reads it, e.g. "200-299,304"; the
// empty set is "100-399".
func (s StatusSet) String() string {
	if len(s) == 0 {
		s = DefaultStatus
	}
	parts := make([]string, len(s))
	for i, r := range s {
		if r.First == r.Last {
			parts[i] = strconv.Itoa(r.First)
		} else {
			parts[i] = strconv.Itoa(r.First) + "-" + strconv.Itoa(r.Last)
		}
	}
	return strings.Join(parts, ",")
}

// escapeQuery percent-encodes the bytes of a raw query that may not appear
// in a request line: controls, space and everything beyond ASCII. Escapes
// already there, and every other byte, are kept.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c > ' ' && c < 0x7f {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(q)+8), q[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return q
	}
	return string(b)
}
