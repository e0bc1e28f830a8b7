//go:build !linux && !darwin

package sockdiag

import (
	"errors"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("sockdiag: socket lookup on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Lookup is not supported on this system: it returns an error wrapping
// [errors.ErrUnsupported].
func Lookup(port int) ([]Socket, error) { return nil, errUnsupported }

// Holders is not supported on this system: it returns an error wrapping
// [errors.ErrUnsupported].
func Holders(inodes []uint64) (map[uint64][]int, error) { return nil, errUnsupported }

// LookupPorts is not supported on this system: it returns an error wrapping
// [errors.ErrUnsupported].
func LookupPorts(ports []int) ([]Socket, error) { return nil, errUnsupported }

// Holding is not supported on this system: it returns an error wrapping
// [errors.ErrUnsupported].
func Holding(ports ...int) ([]Socket, error) { return nil, errUnsupported }
