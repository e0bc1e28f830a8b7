//go:build unix

package lock

import (
	"os"
	"syscall"
)

// openFlags opens the lock file read-only (flock needs no write access),
// creating it when missing, refusing to follow a symlink in its place, and
// not blocking if a FIFO was put there (Acquire then refuses it).
const openFlags = os.O_CREATE | os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
