//go:build !unix

package store

import "os"

const (
	noFollow = 0
	nonBlock = 0
)

func setBlocking(*os.File) error { return nil }

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
