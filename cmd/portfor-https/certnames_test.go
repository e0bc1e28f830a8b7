package main

// What a server puts in its certificate must not reach a terminal as
// control bytes (found by a hostile review).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Go's x509 hostname error lists the certificate's DNS names verbatim;
// they may hold any ASCII byte but those oneLine folds (ESC, BEL...). Both
// the report line (which portfor prints) and the hand-run error carry them.
func TestCertificateNamesAreNotWrittenRaw(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	url := "https://localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/"
	clean := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < ' ' && s[i] != '\n' || s[i] == 0x7f {
				return false
			}
		}
		return true
	}
	o, e, code := call("-t", "2s", url) // long enough for a handshake on a loaded machine
	assert.Equal(t, 1, code)
	assert.Contains(t, e, "certificate")
	assert.True(t, clean(e), "stderr: %q", e)
	o, _, _ = call("-report", "-t", "2s", url)
	assert.True(t, clean(o), "report line: %q", o)
}
