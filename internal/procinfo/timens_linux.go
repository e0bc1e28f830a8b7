package procinfo

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Start times and time namespaces.
//
// Field 22 of /proc/PID/stat is the process's boot-time clock at its fork,
// in clock ticks, shifted by the boottime offset of the time namespace of
// the process *reading* it (Linux ≥ 5.6). A reader in another time
// namespace (any user can make one: unshare -U -r -T --boottime N) would see
// every start time moved, and take every owner for a process that reused
// its pid. So start times are normalised to one time base, the initial time
// namespace's (the host's boot time): the reader's offset is subtracted.
//
// An offset that is not a whole number of ticks (nanoseconds may be written
// to timens_offsets; CRIU does) makes a normalised start time one tick high
// for some processes; startMatches allows for exactly that.

// initTimeNS is the inode of the initial time namespace (PROC_TIME_INIT_INO),
// whose offsets are zero.
const initTimeNS = 0xEFFFFFFA

// timeBase is how this process's reads of start times relate to the host's.
// A multi-threaded process (every Go program) can never change its time
// namespace: setns needs a single thread and unshare moves only children.
type timeBase struct {
	known    bool  // the offset is known; if not, Lookup records no start time
	offset   int64 // the boottime offset of this process's time namespace, ns
	offTicks int64 // offset in ticks, rounded down
	exact    bool  // offset is a whole number of ticks: reads are exact
	tick     int64 // ns per clock tick
}

var timeView = sync.OnceValue(readTimeBase)

func readTimeBase() timeBase {
	own, err := readNSLink("/proc/self/ns/time")
	if err != nil { // no time namespaces (Linux < 5.6, CONFIG_TIME_NS off): no shift
		return newTimeBase(clkTck(), 0)
	}
	// timens_offsets shows the offsets of the namespace for children, which
	// is this process's own unless it called unshare(CLONE_NEWTIME) itself.
	children, err := readNSLink("/proc/self/ns/time_for_children")
	if err == nil && children == own {
		if b, err := readFile("/proc/self/timens_offsets"); err == nil {
			if off, ok := parseBoottimeOffset(b); ok {
				return newTimeBase(clkTck(), off)
			}
		}
	}
	if own == initTimeNS {
		return newTimeBase(clkTck(), 0)
	}
	return timeBase{}
}

func newTimeBase(hz int64, offset int64) timeBase {
	tick := int64(1e9) / hz
	k := offset / tick
	if offset%tick < 0 {
		k-- // round down: the remainder is then in [0, tick)
	}
	return timeBase{known: true, offset: offset, offTicks: k, exact: offset == k*tick, tick: tick}
}

// normalise turns a start time as this process reads it into the host's
// time base; 0 (unknown) where the offset is not known.
func (tb timeBase) normalise(read uint64) uint64 {
	if !tb.known {
		return 0
	}
	return read - uint64(tb.offTicks) // modular: a negative offset adds
}

// nowTicks returns the host's boot-time clock now, in ticks, as start times
// are normalised; false where it cannot be told.
func (tb timeBase) nowTicks() (uint64, bool) {
	var ts unix.Timespec
	if !tb.known || unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0, false
	}
	ns := ts.Nano() - tb.offset
	if ns < 0 {
		return 0, false
	}
	return uint64(ns / tb.tick), true
}

// startMatches reports whether a start time read now (normalised) may be
// that of the process whose start was recorded, both known.
//
// Either side may be one tick high if it was read with an offset that is
// not a whole number of ticks. A recorded start one tick above the one read
// is allowed always: a process that took the pid later cannot have started
// earlier, so it can only be the record that is high. One read a tick above
// the record is allowed only when this reader's own reads may be high.
func startMatches(recorded, read uint64) bool {
	switch read {
	case recorded, recorded - 1:
		return true
	case recorded + 1:
		return !timeView().exact
	}
	return false
}

// parseBoottimeOffset reads the boottime line of /proc/PID/timens_offsets,
// "boottime <seconds> <nanoseconds>" (the clock may also be given by its
// number, 7), and returns the offset in nanoseconds.
func parseBoottimeOffset(b []byte) (int64, bool) {
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) != 3 || (f[0] != "boottime" && f[0] != strconv.Itoa(unix.CLOCK_BOOTTIME)) {
			continue
		}
		sec, err1 := strconv.ParseInt(f[1], 10, 64)
		nsec, err2 := strconv.ParseInt(f[2], 10, 64)
		// The kernel bounds offsets to half of KTIME_SEC_MAX, so this fits.
		if err1 != nil || err2 != nil || nsec < 0 || nsec >= 1e9 || sec > 1<<32 || sec < -(1<<32) {
			return 0, false
		}
		return sec*1e9 + nsec, true
	}
	return 0, false
}

// readNSLink reads a namespace link such as "time:[4026531834]" and returns
// its inode number.
func readNSLink(path string) (uint64, error) {
	link, err := readlink(path)
	if err != nil {
		return 0, err
	}
	_, s, _ := strings.Cut(link, ":[")
	return strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
}

func readlink(path string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Readlink(path, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// clkTck is USER_HZ, the unit of start times: the auxiliary vector's
// AT_CLKTCK, 100 on every architecture Go supports where it is missing.
func clkTck() int64 {
	const atClkTck = 17
	if auxv, err := unix.Auxv(); err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 && kv[1] <= 1e9 {
				return int64(kv[1])
			}
		}
	}
	return 100
}
