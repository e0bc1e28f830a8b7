package procinfo

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// maxCommand cuts a command line, as Linux's one 4 KiB read of
// /proc/PID/cmdline does.
const maxCommand = 4096

// parseProcArgs returns the command line held in a kern.procargs2 buffer
// (macOS): argc as an int32 in host order, the executable's path ending in
// NUL, NULs of padding, then argc arguments each ending in NUL, then the
// environment, which is never read. The arguments are joined by spaces as
// on Linux and the result cut at maxCommand bytes; "" where b is too short
// to hold argc or the path, or argc is not positive. An argument the end
// of b cuts is left out.
func parseProcArgs(b []byte) string {
	if len(b) < 4 {
		return ""
	}
	argc := int32(binary.NativeEndian.Uint32(b))
	i := bytes.IndexByte(b[4:], 0)
	if argc <= 0 || i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(b[4+i:], "\x00")
	var sb strings.Builder
	for n := int32(0); n < argc && sb.Len() < maxCommand; n++ {
		j := bytes.IndexByte(rest, 0)
		if j < 0 {
			break
		}
		if n > 0 {
			sb.WriteByte(' ')
		}
		sb.Write(rest[:j])
		rest = rest[j+1:]
	}
	s := sb.String()
	return strings.TrimSpace(s[:min(len(s), maxCommand)])
}
