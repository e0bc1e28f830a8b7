//go:build unix

package lock

import (
	"os"

	"github.com/portfor/portfor/internal/safefile"
)

// openFlags opens an existing lock file read-only (flock needs no write
// access) with safefile's flags: refusing to follow a link in its place, and
// not blocking if a FIFO was put there (the lock then refuses it). There is
// no O_CREATE: a missing lock file is made by safefile.Open, with exactly
// the permissions asked for.
const openFlags = os.O_RDONLY | safefile.OpenFlags
