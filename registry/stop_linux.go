package registry

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/sockdiag"
)

// pin opens a pidfd on t's process, which refers to that one process for
// good, whatever becomes of its pid: Stop pins each process it may signal
// when it finds it, and signals it through the pidfd. Without pidfds
// (Linux before 5.3, a seccomp filter that refuses them) t stays unpinned
// and is signalled with kill(2).
func pin(t *target) sendResult {
	if noPidfd {
		return sent
	}
	fd, err := unix.PidfdOpen(t.pid, 0)
	switch {
	case err == nil:
		t.pidfd = fd
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
	case errors.Is(err, unix.ESRCH):
		// No process has the pid as this process numbers pids. When /proc
		// numbers them otherwise (a pid namespace without a /proc of its
		// own) and still shows the process, it is out of reach, not gone.
		if _, err := procinfo.Owner(t.pid); err == nil && !procNumbersAsWeDo() {
			return unidentified
		}
		return gone
	default: // EINVAL: the pid names no process here (a thread, another namespace's numbering)
		return unidentified
	}
	return sent
}

// procNumbersAsWeDo reports whether /proc numbers pids as this process
// does: it shows this process under os.Getpid().
var procNumbersAsWeDo = sync.OnceValue(func() bool {
	id, err := procinfo.Lookup(os.Getpid())
	return err == nil && id.PID == os.Getpid()
})

// unpin closes t's pidfd, if it has one.
func unpin(t *target) {
	if t.pidfd >= 0 {
		unix.Close(t.pidfd)
		t.pidfd = -1
	}
}

// sendSignal sends sig to t if t is still the process found and still
// holds one of the port's sockets at that moment.
//
// A pinned process is checked through /proc/PID and then signalled through
// its pidfd. If the signal is delivered, the pinned process was alive
// throughout, so /proc/PID was that process when checked. If it exited
// meanwhile and its pid went to another process, the checks saw the other
// one, but the signal goes to the pinned process and fails with ESRCH:
// never to a process that was not found holding the port, even one that
// took the pid within the same clock tick, which has the same start time.
func sendSignal(t *target, sig stopSignal) sendResult {
	if t.pidfd < 0 {
		return killChecked(t, sig)
	}
	if r := check(t); r != sent {
		return r
	}
	return sendErr(unix.PidfdSendSignal(t.pidfd, unixSignal(sig), nil, 0))
}

// holds reports whether t still has a descriptor on one of its sockets.
func holds(t *target) bool { return sockdiag.Holds(t.pid, t.inodes) }
