//go:build !unix

package store

const noFollow = 0

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
