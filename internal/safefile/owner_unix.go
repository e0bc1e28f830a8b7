//go:build unix

package safefile

import (
	"io/fs"
	"syscall"
)

// Owner returns the uid and gid owning the file fi describes; ok is false
// where the OS has no owners (Windows).
func Owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// Links returns how many hard links the file fi describes has.
func Links(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
