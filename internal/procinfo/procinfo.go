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

// ErrOtherNamespace is returned by Lookup when /proc belongs to another pid
// namespace than the caller's (a new namespace without a /proc of its own)
// and the process cannot be found in it for certain.
var ErrOtherNamespace = errors.New("process not identifiable: /proc shows another pid namespace")

// Identity names one process for its lifetime: its pid and its start time in
// the OS's own units (clock ticks since boot on Linux, in the initial time
// namespace's time base whatever time namespace reads it; microseconds since
// the epoch on macOS/BSD). Start is 0 where the OS cannot tell it.
//
// NS is the pid namespace PID is numbered in (Linux: the inode number of the
// namespace, as in the link /proc/PID/ns/pid, "pid:[4026531836]"); 0 where
// it is unknown, and always on other systems. Lookup numbers pids as the
// /proc it reads does, so NS is the namespace /proc was mounted for, which
// is the process's own unless it lives in a namespace nested below that.
// With NS, a process in another namespace (a container, unshare -p) can
// tell that PID is not a number in its own; see Alive.
type Identity struct {
	PID   int
	Start uint64
	NS    uint64
}

// String returns "pid N" or "pid N (start S)"; it leaves NS out.
func (id Identity) String() string {
	if id.Start == 0 {
		return fmt.Sprintf("pid %d", id.PID)
	}
	return fmt.Sprintf("pid %d (start %d)", id.PID, id.Start)
}

// Lookup returns the identity of the running process pid, or an error
// wrapping ErrNoProcess.
//
// pid is numbered as the caller numbers pids (os.Getpid, exec.Cmd, kill);
// the Identity's PID is numbered as /proc numbers them. The two differ only
// in a pid namespace whose /proc is still its parent's mount (unshare -p
// without --mount-proc, CLONE_NEWPID): there Lookup finds the caller through
// /proc/self and another process through the NSpid lines of /proc/*/status,
// and returns an error wrapping ErrOtherNamespace where it cannot be sure
// rather than the identity of some other process.
func Lookup(pid int) (Identity, error) {
	if pid <= 0 {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return lookup(pid)
}

// LookupIn returns the identity of the process numbered pid in the pid
// namespace of process peer, as Lookup would give it to this process: what
// a client across a Unix socket means by a pid it sends, peer being the
// client's pid as the kernel reports it (SO_PEERCRED: numbered as this
// process numbers pids, 0 when the client lives where this process cannot
// see it).
//
// On Linux, for a peer in a pid namespace of its own below this process's,
// the process is looked for among those living in that same namespace (its
// link /proc/PID/ns/pid, which only the process's owner or root may read)
// whose pid there (the last on its NSpid line) is pid. An error wrapping
// ErrNoProcess says no such process runs, one wrapping ErrOtherNamespace
// that the namespace cannot be told. Elsewhere pid namespaces do not exist
// and LookupIn is Lookup(pid).
func LookupIn(peer, pid int) (Identity, error) {
	if pid <= 0 {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return lookupIn(peer, pid)
}

// Alive reports whether the process id names is still running: its pid
// exists and, when both start times are known, started when id says. A
// reused pid therefore reports false.
//
// An identity recorded in another pid namespace than the one this process's
// /proc shows (id.NS known and different) is looked for by its pid in that
// namespace (Linux: the NSpid lines of /proc/*/status). Where that namespace
// is out of sight (the owner runs on the host or in a sibling container, and
// this process in a container), Alive reports true: nothing here can tell
// the owner is gone, and taking a live owner's port is the worse mistake.
func Alive(id Identity) (bool, error) {
	if id.PID <= 0 {
		return false, nil
	}
	if id.NS != 0 && id.NS != procNS() {
		return aliveElsewhere(id)
	}
	cur, err := lookupProc(id.PID)
	if errors.Is(err, ErrNoProcess) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return id.Start == 0 || cur.Start == 0 || startMatches(id.Start, cur.Start), nil
}

// Command returns the command line of pid with arguments joined by spaces,
// or "" where it cannot be read.
func Command(pid int) string { return command(pid) }

// Program returns pid's program name (on Linux its comm, at most 15
// bytes; on macOS its p_comm, at most 16), or "" if it cannot be read.
func Program(pid int) string { return program(pid) }

// Dir returns pid's working directory, or "" if it cannot be read (another
// user's process, or one that exited). On macOS it asks lsof, a run of some
// milliseconds, and is "" without lsof.
func Dir(pid int) string { return dir(pid) }

// SameMounts reports whether pid lives in this process's mount namespace,
// where its working directory (Dir) names the same directory as here: for
// a process in another one (a container, unshare -m, a service with a
// private /tmp) Dir is a path of that namespace, which here may name
// another directory. It is false where that cannot be read, and true
// where the system has no mount namespaces.
func SameMounts(pid int) bool { return sameMounts(pid) }

// Namespace returns the inode of this process's pid namespace, as
// recorded in Identity.NS, or 0 where the system has none.
func Namespace() uint64 { return procNS() }

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
