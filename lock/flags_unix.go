//go:build unix

package lock

import (
	"os"
	"syscall"
)

// openFlags opens the lock file read-only (flock needs no write access),
// creating it when missing and refusing to follow a symlink in its place.
const openFlags = os.O_CREATE | os.O_RDONLY | syscall.O_NOFOLLOW
