//go:build !linux && !darwin && !freebsd

package portrange

import (
	"errors"
	"runtime"
)

func ephemeral() (Range, error) {
	return FallbackEphemeral, errors.New("ephemeral port range: not known on " + runtime.GOOS + ", assuming 49152-65535")
}

func reserved() (List, error) { return nil, nil }
