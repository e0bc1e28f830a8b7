//go:build !unix

package lock

import "os"

// openFlags opens the lock file for reading and writing, creating it when missing.
const openFlags = os.O_CREATE | os.O_RDWR
