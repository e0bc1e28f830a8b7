package lock

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// holderPID returns the pid of a process holding a flock on path, read from
// /proc/locks, or 0 when none is found. Blocked waiters ("->" lines) are skipped.
func holderPID(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	return findHolder(bufio.NewScanner(f), uint64(st.Dev), st.Ino)
}

// findHolder scans /proc/locks lines such as
//
//	1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF
//
// for a granted lock on the file with the given device and inode.
func findHolder(sc *bufio.Scanner, dev, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", devMajor(dev), devMinor(dev), ino)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] == "->" {
			continue
		}
		if fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// devMajor and devMinor split a Linux dev_t as the kernel's MAJOR/MINOR macros do.
func devMajor(dev uint64) uint64 { return ((dev >> 8) & 0xfff) | ((dev >> 32) &^ 0xfff) }
func devMinor(dev uint64) uint64 { return (dev & 0xff) | ((dev >> 12) &^ 0xff) }
