// Package httpget asks an HTTP/1.1 server for the status of one GET, and
// nothing more: no body, no keep-alive, no proxy, no redirects.
//
// It exists so that the portfor binary does not link net/http, which a
// wait on a URL needs only this much of, and which adds about a
// millisecond to the start of every portfor process (its package
// initialisation) whether or not it ever makes a request. For the same
// reason it does not link crypto/tls (about two milliseconds more): https
// works once a TLS client is set in [TLSClient], which package
// github.com/portfor/portfor/registry/https does when it is imported.
package httpget

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// MaxHeaderBytes bounds what is read of an answer: the status line and the
// header lines of the informational (1xx) answers before the final one. A
// server that sends more gets ErrMalformed.
const MaxHeaderBytes = 64 << 10

// max1xx bounds the informational answers skipped before the final one, as
// net/http does.
const max1xx = 5

// ErrMalformed is returned (wrapped) for an answer that is not HTTP/1.x.
var ErrMalformed = errors.New("malformed HTTP answer")

// ErrNoTLS is returned for an https request while [TLSClient] is not set.
var ErrNoTLS = errors.New("https needs a TLS client: import github.com/portfor/portfor/registry/https")

// TLS asks for an https request.
type TLS struct {
	ServerName string // the name the certificate must be valid for
	Insecure   bool   // do not verify the certificate
}

// TLSClient, when set, runs the TLS handshake of an https request on conn
// and returns the TLS connection. It is set once, before any request, by
// the init function of the package that provides it.
var TLSClient func(ctx context.Context, conn net.Conn, t TLS) (net.Conn, error)

// Request is one GET.
type Request struct {
	Addr netip.AddrPort // where to connect
	Host string         // the Host header, e.g. "localhost:8080"
	// Target is the request target, an absolute path with its query
	// ("/health?full=1"), already escaped as url.URL.RequestURI returns it.
	Target string
	// TLS, if not nil, makes it an https request (see [TLSClient]).
	TLS       *TLS
	UserAgent string
	// Authorization, if not empty, is sent as the Authorization header,
	// e.g. "Basic dXNlcjpwdw==".
	Authorization string
}

// Status sends r on a fresh connection and returns the status code of the
// final answer (1xx answers other than 101 are skipped), closing the
// connection without reading the body. ctx bounds the whole exchange.
func Status(ctx context.Context, r Request) (int, error) {
	if err := checkRequest(r); err != nil {
		return 0, err
	}
	if r.TLS != nil && TLSClient == nil {
		return 0, ErrNoTLS
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr.String())
	if err != nil {
		return 0, ctxErr(ctx, err)
	}
	defer conn.Close()
	// The context bounds reads and writes too: a server that accepts and
	// then says nothing, or a byte a minute, is cut off when ctx ends.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	raw := conn // conn becomes the TLS connection below: the callback must not read it
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if r.TLS != nil {
		tc, err := TLSClient(ctx, conn, *r.TLS)
		if err != nil {
			return 0, ctxErr(ctx, err)
		}
		defer tc.Close()
		conn = tc
	}
	req := "GET " + r.Target + " HTTP/1.1\r\nHost: " + r.Host + "\r\n"
	if r.UserAgent != "" {
		req += "User-Agent: " + r.UserAgent + "\r\n"
	}
	if r.Authorization != "" {
		req += "Authorization: " + r.Authorization + "\r\n"
	}
	req += "Accept: */*\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, ctxErr(ctx, err)
	}
	code, err := ReadStatus(bufio.NewReaderSize(&limited{r: conn, n: MaxHeaderBytes}, 4096))
	return code, ctxErr(ctx, err)
}

// errTooLong ends a read past MaxHeaderBytes. A type, not fmt.Errorf in a
// var: that would run at every portfor start.
var errTooLong error = tooLong{}

type tooLong struct{}

func (tooLong) Error() string {
	return ErrMalformed.Error() + ": longer than " + strconv.Itoa(MaxHeaderBytes) + " bytes before the status"
}

func (tooLong) Unwrap() error { return ErrMalformed }

// limited is io.LimitReader with its own error, so that a server that
// talks too much is not taken for one that hung up.
type limited struct {
	r io.Reader
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLong
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

// ctxErr prefers the context's error to what a cut connection returned.
// The connection's deadline is the context's, so a read that timed out
// means the context is ending, if it has not quite yet.
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// checkRequest refuses what would let the Host or target split the request.
func checkRequest(r Request) error {
	if !r.Addr.IsValid() || r.Addr.Port() == 0 {
		return fmt.Errorf("invalid address %s", r.Addr)
	}
	if r.Host == "" || !printable(r.Host) || strings.ContainsRune(r.Host, ' ') {
		return fmt.Errorf("invalid Host %q", r.Host)
	}
	if !strings.HasPrefix(r.Target, "/") || !printable(r.Target) || strings.ContainsRune(r.Target, ' ') {
		return fmt.Errorf("invalid request target %q", r.Target)
	}
	if !printable(r.UserAgent) {
		return fmt.Errorf("invalid User-Agent %q", r.UserAgent)
	}
	if !printable(r.Authorization) {
		return errors.New("invalid Authorization header")
	}
	return nil
}

// printable reports whether s is visible ASCII and spaces only.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ReadStatus reads answers from br until a final one (not 1xx, or 101)
// and returns its status code. It reads the status line of the final
// answer and nothing after it; the caller bounds br.
func ReadStatus(br *bufio.Reader) (int, error) {
	for n := 0; ; n++ {
		line, err := readLine(br)
		if err != nil {
			return 0, err
		}
		code, err := parseStatusLine(line)
		if err != nil {
			return 0, err
		}
		if code >= 200 || code == 101 {
			return code, nil
		}
		if n == max1xx {
			return 0, fmt.Errorf("%w: more than %d informational answers", ErrMalformed, max1xx)
		}
		for { // the 1xx answer's header lines, up to the empty one
			h, err := readLine(br)
			if err != nil {
				return 0, err
			}
			if h == "" {
				break
			}
		}
	}
}

// readLine returns one line without its CRLF (or bare LF). A line the
// connection ends in the middle of is an error, not a line.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		switch {
		case err == nil:
			b = b[:len(b)-1]
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return string(b), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue // a long line: the limit on the connection bounds it
		case errors.Is(err, io.EOF):
			return "", fmt.Errorf("%w: connection closed without a final answer", ErrMalformed)
		default:
			return "", err
		}
	}
}

// parseStatusLine reads "HTTP/1.x NNN reason" and returns NNN.
func parseStatusLine(line string) (int, error) {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || len(proto) != len("HTTP/1.x") || !strings.HasPrefix(proto, "HTTP/1.") || proto[7] < '0' || proto[7] > '9' {
		return 0, fmt.Errorf("%w: status line %s", ErrMalformed, quote(line))
	}
	if len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, fmt.Errorf("%w: status line %s", ErrMalformed, quote(line))
	}
	code := 0
	for i := 0; i < 3; i++ {
		c := rest[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: status line %s", ErrMalformed, quote(line))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return 0, fmt.Errorf("%w: status %d", ErrMalformed, code)
	}
	return code, nil
}

// quote shows at most 40 bytes of what a server sent, escaped, so an error
// stays one short line whatever the server wrote.
func quote(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…", s[:40])
	}
	return fmt.Sprintf("%q", s)
}
