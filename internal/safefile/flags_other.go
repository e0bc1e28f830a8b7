//go:build !unix

package safefile

import "os"

// OpenFlags are the flags [Open] adds to every open: none here.
const OpenFlags = 0

func clearNonblock(*os.File, int) error { return nil }
