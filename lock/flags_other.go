//go:build !unix

package lock

import (
	"os"

	"github.com/portfor/portfor/internal/safefile"
)

// openFlags opens an existing lock file for reading and writing. There is no
// O_CREATE: a missing lock file is made by safefile.Open.
const openFlags = os.O_RDWR | safefile.OpenFlags
