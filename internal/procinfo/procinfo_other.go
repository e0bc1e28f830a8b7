//go:build !linux && !darwin

package procinfo

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lookupProc falls back to signal 0 where start times are not available: a
// reused pid then counts as alive (documented in the package's caveats).
func lookupProc(pid int) (Identity, error) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return Identity{PID: pid}, nil
}

func command(int) string { return "" }

func program(int) string { return "" }

func dir(int) string { return "" }

func sameMounts(int) bool { return true }

func bootID() string { return "" }

func owner(pid int) (int, error) {
	return 0, fmt.Errorf("process %d: owner: %w", pid, errors.ErrUnsupported)
}

func parent(pid int) (int, error) {
	return 0, fmt.Errorf("process %d: parent: %w", pid, errors.ErrUnsupported)
}

// startMatches: start times are read the same way by every process here.
func startMatches(recorded, read uint64) bool { return recorded == read }
