//go:build !unix

package store

import "os"

// lockShared reports false: Peek reads through Open on this system, which
// takes bbolt's lock its own way.
func lockShared(*os.File) bool { return false }
