//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import "os"

// isTerminal is false where portfor does not know how to ask.
func isTerminal(*os.File) bool { return false }
