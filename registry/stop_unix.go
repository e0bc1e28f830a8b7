//go:build unix

package registry

import (
	"errors"

	"golang.org/x/sys/unix"
)

// canSignal: Stop can send signals here.
const canSignal = true

// unixSignal is sig's number.
func unixSignal(sig stopSignal) unix.Signal {
	if sig == sigKill {
		return unix.SIGKILL
	}
	return unix.SIGTERM
}

// killChecked checks t (see check) and, if it passes, signals it with
// kill(2): the path without pidfds. The process could exit and its pid go
// to another process between the check and the kill; nothing closes that
// window without a pidfd.
func killChecked(t *target, sig stopSignal) sendResult {
	if r := check(t); r != sent {
		return r
	}
	return sendErr(unix.Kill(t.pid, unixSignal(sig)))
}

// sendErr maps the error of kill(2) or pidfd_send_signal(2).
func sendErr(err error) sendResult {
	switch {
	case err == nil:
		return sent
	case errors.Is(err, unix.ESRCH):
		return gone
	default: // EPERM, or a security module's refusal
		return denied
	}
}
