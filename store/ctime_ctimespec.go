//go:build darwin || freebsd || netbsd

package store

import (
	"os"
	"syscall"
)

// changeTime is fi's status change time (ctime) in nanoseconds.
func changeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctimespec.Nano()
	}
	return fi.ModTime().UnixNano()
}
