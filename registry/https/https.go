// Package https lets the waits of package registry ask https:// URLs.
// Import it for its effect, as image/png is imported for image.Decode:
//
//	import _ "github.com/portfor/portfor/registry/https"
//
// Without it, [registry.WaitHTTP] and [registry.WaitTarget] wait on
// http:// URLs, TCP ports and Unix sockets, and return an error wrapping
// [registry.ErrNoTLS] for an https:// URL at once. The TLS client lives
// apart so that a program that never waits on https does not link
// crypto/tls, whose packages add about two milliseconds to the start of
// every process (measured in docs/benchmarks.md): the portfor command
// stays fast and runs its companion portfor-https for https waits.
package https

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/portfor/portfor/internal/httpget"
)

func init() {
	httpget.TLSClient = handshake
}

// handshake runs a TLS client handshake on conn: HTTP/1.1 only, verifying
// the certificate for t.ServerName unless t.Insecure.
func handshake(ctx context.Context, conn net.Conn, t httpget.TLS) (net.Conn, error) {
	tc := tls.Client(conn, &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.Insecure,
		NextProtos:         []string{"http/1.1"},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
