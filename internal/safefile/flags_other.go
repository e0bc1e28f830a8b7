//go:build !unix

package safefile

import "os"

const extraFlags = 0

func clearNonblock(*os.File, int) error { return nil }
