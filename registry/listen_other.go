//go:build !unix

package registry

import (
	"errors"
	"io"
	"syscall"
)

// inheritedSocket returns nothing: sockets are not handed over by number
// here.
func inheritedSocket(string, Protocol) (io.Closer, error) { return nil, nil }

// addrInUse reports whether a bind failed because the address is in use.
func addrInUse(err error) bool {
	var errno syscall.Errno
	return errors.Is(err, syscall.EADDRINUSE) || errors.As(err, &errno) && errno == wsaEADDRINUSE
}

// wsaEADDRINUSE is Windows' WSAEADDRINUSE, which Go's syscall.EADDRINUSE
// is not.
const wsaEADDRINUSE = 10048
