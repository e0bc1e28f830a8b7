//go:build !linux && !openbsd && !dragonfly && !solaris && !darwin && !freebsd && !netbsd

package store

import "os"

// changeTime stands in for a status change time where os.FileInfo gives
// none (Windows): the modification time, which every write sets too but a
// user can set back.
func changeTime(fi os.FileInfo) int64 { return fi.ModTime().UnixNano() }
