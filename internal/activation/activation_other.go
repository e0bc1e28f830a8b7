//go:build !unix

package activation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
)

// files fails: descriptors cannot be passed this way here.
func files(names []string) ([]*os.File, error) {
	return nil, fmt.Errorf("%s=%d: socket activation is not supported on %s: %w", EnvListenFDs, len(names), runtime.GOOS, errors.ErrUnsupported)
}

// UnixListener fails: socket activation is not supported here. It closes f.
func UnixListener(f *os.File) (*net.UnixListener, error) {
	f.Close()
	return nil, fmt.Errorf("socket activation is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Notify fails when NOTIFY_SOCKET is set: readiness notification is not
// supported here. It returns false and no error when the variable is unset.
func Notify(state string) (sent bool, err error) {
	if os.Getenv(EnvNotifySocket) == "" {
		return false, nil
	}
	return false, fmt.Errorf("notify %s: not supported on %s: %w", EnvNotifySocket, runtime.GOOS, errors.ErrUnsupported)
}

// Writable fails: descriptors are not passed by number here.
func Writable(fd int) error {
	return fmt.Errorf("descriptors are not passed by number on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
