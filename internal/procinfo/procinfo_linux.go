package procinfo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// lookupProc reads /proc/PID/stat, pid as /proc numbers it. Its second
// field, the command name, is in parentheses and may itself hold spaces and
// parentheses, so the fields after it are counted from the last ')'. NS is
// left for the caller.
func lookupProc(pid int) (Identity, error) {
	return lookupPath(pid, "/proc/"+strconv.Itoa(pid)+"/stat")
}

// lookupPath reads a stat file, /proc/PID/stat or /proc/self/stat, and
// returns pid with its start time in the host's time base (see timeBase),
// or 0 where this process cannot tell its time namespace's offset.
func lookupPath(pid int, path string) (Identity, error) {
	b, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: %w", pid, err)
	}
	start, err := parseStat(b)
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return Identity{PID: pid, Start: timeView().normalise(start)}, nil
}

// parseStat returns field 22 (starttime) of a /proc/PID/stat line.
func parseStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); starttime is field 22.
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, errors.New("malformed /proc stat: too few fields")
	}
	start, err := strconv.ParseUint(fields[idx], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat starttime %q", fields[idx])
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, ErrNoProcess // a zombie has exited: it owns nothing any more
	}
	return start, nil
}

func command(pid int) string {
	b, err := readProc(pid, "cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

func program(pid int) string {
	b, err := readProc(pid, "comm")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func dir(pid int) string {
	d, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return ""
	}
	return d
}

// mountNS is this process's mount namespace, as its /proc link names it
// ("mnt:[4026531841]"); "" if it cannot be read.
var mountNS = sync.OnceValue(func() string {
	link, _ := os.Readlink("/proc/self/ns/mnt")
	return link
})

func sameMounts(pid int) bool {
	link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
	return err == nil && link == mountNS()
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	for _, c := range id {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return id
}

// readProc reads /proc/PID/NAME with one read into a fixed buffer: three
// system calls where os.ReadFile, which cannot size a /proc file, makes five.
// Longer contents are cut at 4 KiB (a stat line is far shorter; a longer
// command line is shown cut).
func readProc(pid int, name string) ([]byte, error) {
	return readFile("/proc/" + strconv.Itoa(pid) + "/" + name)
}

// readFile is readProc for any /proc path.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return buf[:n], nil
}

// owner is the owner of /proc/PID, which is the process's effective uid.
func owner(pid int) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
		}
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return int(st.Uid), nil
}

func parent(pid int) (int, error) {
	b, err := readProc(pid, "stat")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("malformed /proc stat")
	}
	return strconv.Atoi(f[1]) // field 4, ppid
}
