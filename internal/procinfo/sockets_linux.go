package procinfo

import (
	"os"
	"strconv"
	"strings"
)

func portHolders(ports []int) map[int][]int {
	want := make(map[int]bool, len(ports))
	for _, p := range ports {
		want[p] = true
	}
	inodes := map[string]int{} // socket inode → port
	for _, table := range []struct {
		file   string
		listen bool // TCP: listening sockets only
	}{{"/proc/net/tcp", true}, {"/proc/net/tcp6", true}, {"/proc/net/udp", false}, {"/proc/net/udp6", false}} {
		b, err := os.ReadFile(table.file)
		if err != nil {
			continue
		}
		for inode, port := range socketInodes(string(b), want, table.listen) {
			inodes[inode] = port
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := map[int][]int{}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir("/proc/" + p.Name() + "/fd")
		if err != nil {
			continue
		}
		seen := map[int]bool{} // ports this process was counted for
		for _, fd := range fds {
			link, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name())
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if port, ok := inodes[strings.TrimSuffix(link[len("socket:["):], "]")]; ok && !seen[port] {
				seen[port] = true
				out[port] = append(out[port], pid)
			}
		}
	}
	return out
}

// socketInodes reads a /proc/net/{tcp,udp}[6] table and returns the inodes
// of sockets whose local port is one of want (listening ones only, if
// listen), with their ports.
func socketInodes(table string, want map[int]bool, listen bool) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || !want[int(p)] || (listen && f[3] != "0A") || f[9] == "0" {
			continue
		}
		out[f[9]] = int(p)
	}
	return out
}
