//go:build !unix

package safefile

import "io/fs"

// Owner cannot tell a file's owner here: there are no uids.
func Owner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// Links cannot tell a file's hard links here.
func Links(fs.FileInfo) (uint64, bool) { return 0, false }
