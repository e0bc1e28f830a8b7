package queue

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// watch wakes a waiting caller the moment its request file goes: an inotify
// watch on the file itself, so only that caller is woken, by its own
// request's removal. Where inotify cannot be had (a per-user limit of
// instances, say), the caller just polls.
type watch struct{ fd int }

func newWatch(path string) *watch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	// IN_ATTRIB: the link count dropped (the file, claimed or not, was
	// removed). Not IN_MOVE_SELF: a claim renames the file, and the caller
	// has nothing to do until its batch is through.
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_ATTRIB|unix.IN_DELETE_SELF); err != nil {
		unix.Close(fd)
		return nil // gone already, or not watchable: the next look at it tells
	}
	return &watch{fd: fd}
}

// wait returns after d, when the request file changes, or soon after ctx
// ends (within d).
func (w *watch) wait(ctx context.Context, d time.Duration) {
	if w == nil {
		sleep(ctx, d)
		return
	}
	ms := max(1, int(d/time.Millisecond))
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, ms); err == nil && n > 0 {
		var buf [4096]byte
		_, _ = unix.Read(w.fd, buf[:]) // drain the events: what they say is looked up anyway
	}
}

func (w *watch) close() {
	if w != nil {
		unix.Close(w.fd)
	}
}
