//go:build darwin || linux

package procinfo

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/portfor/portfor/internal/lsof"
	"golang.org/x/sys/unix"
)

// dirTimeout bounds the lsof run of dirLsof: one process's cwd takes
// milliseconds.
const dirTimeout = 5 * time.Second

// dirLsof returns pid's working directory as lsof tells it (macOS, where
// nothing else does without cgo; built on Linux for the tests), or "".
// lsof writes characters it deems unprintable in a path as escapes, so the
// path is only believed when it names a directory with the inode lsof gave.
func dirLsof(pid int) string {
	if pid <= 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), dirTimeout)
	defer cancel()
	out, err := lsof.Run(ctx, "-w", "-a", "-p", strconv.Itoa(pid), "-d", "cwd", "-F", "fin")
	if err != nil {
		return ""
	}
	path, ino, ok := parseCwd(out)
	var st unix.Stat_t
	if !ok || unix.Stat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || uint64(st.Ino) != ino {
		return ""
	}
	return path
}

// parseCwd reads lsof's field output for one process's cwd (-F fin): the
// name and inode of the file set "fcwd".
func parseCwd(out []byte) (path string, ino uint64, ok bool) {
	var inCwd, hasIno, hasName bool
	for line := range bytes.SplitSeq(out, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		val := string(line[1:])
		switch line[0] {
		case 'p':
			inCwd = false
		case 'f':
			if inCwd = val == "cwd"; inCwd {
				hasIno, hasName = false, false
			}
		case 'i':
			if inCwd {
				n, err := strconv.ParseUint(val, 10, 64)
				ino, hasIno = n, err == nil
			}
		case 'n':
			if inCwd {
				path, hasName = val, true
			}
		}
	}
	if !hasIno || !hasName || len(path) == 0 || path[0] != '/' {
		return "", 0, false
	}
	return path, ino, true
}
