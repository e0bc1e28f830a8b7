// Package procinfo tells whether a process is still the one it was: a pid
// together with the process's start time, so that a pid the OS has handed to
// a new process is not mistaken for the old one.
package procinfo

import (
	"errors"
	"fmt"
)

// ErrNoProcess is returned when no process has the pid.
var ErrNoProcess = errors.New("no such process")

// Identity names one process for its lifetime: its pid and its start time in
// the OS's own units (clock ticks since boot on Linux, microseconds since the
// epoch on macOS/BSD). Start is 0 where the OS cannot tell it.
type Identity struct {
	PID   int
	Start uint64
}

// String returns "pid N" or "pid N (start S)".
func (id Identity) String() string {
	if id.Start == 0 {
		return fmt.Sprintf("pid %d", id.PID)
	}
	return fmt.Sprintf("pid %d (start %d)", id.PID, id.Start)
}

// Lookup returns the identity of the running process pid, or an error
// wrapping ErrNoProcess.
func Lookup(pid int) (Identity, error) {
	if pid <= 0 {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return lookup(pid)
}

// Alive reports whether the process id names is still running: its pid
// exists and, when both start times are known, started when id says. A
// reused pid therefore reports false.
func Alive(id Identity) (bool, error) {
	cur, err := Lookup(id.PID)
	if errors.Is(err, ErrNoProcess) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return id.Start == 0 || cur.Start == 0 || cur.Start == id.Start, nil
}

// Command returns the command line of pid with arguments joined by spaces,
// or "" where it cannot be read.
func Command(pid int) string { return command(pid) }

// BootID returns a string that changes every time the machine boots (on
// Linux, /proc/sys/kernel/random/boot_id; on macOS, the boot time), or ""
// where it cannot be told. Processes never outlive a boot, so state kept
// only for running processes is worthless once BootID changes.
func BootID() string { return bootID() }

// Owner returns the uid that owns process pid, or an error wrapping
// ErrNoProcess.
func Owner(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return owner(pid)
}

// PortHolders returns, for each of ports, the pids of the processes with a
// socket listening (TCP) or bound (UDP) on it, IPv4 or IPv6. It reads the
// system's socket tables and process table once for all the ports (Linux;
// elsewhere it returns nil). Sockets of processes this user may not
// inspect are missing.
func PortHolders(ports ...int) map[int][]int { return portHolders(ports) }

// Parent returns the pid of pid's parent, or an error wrapping ErrNoProcess.
func Parent(pid int) (int, error) { return parent(pid) }

// Descends reports whether pid is ancestor or a descendant of it.
func Descends(pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ { // bounded: a pid chain is short
		if pid == ancestor {
			return true
		}
		p, err := Parent(pid)
		if err != nil {
			return false
		}
		pid = p
	}
	return pid == ancestor
}
