package procinfo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// initPIDNS is the inode number of the initial pid namespace
// (PROC_PID_INIT_INO, fixed since Linux 3.8). Every pid namespace descends
// from it, so from there every namespace that has processes is in view.
const initPIDNS = 0xEFFFFFFC

// procView is how this process sees itself through /proc. A process never
// changes pid namespace (setns and unshare move only its later children),
// so it is read once.
type procView struct {
	ns      uint64 // the pid namespace /proc numbers processes in; 0 unknown
	same    bool   // /proc numbers processes as this process does
	selfPID int    // this process's pid as /proc numbers it; 0 if /proc does not show it
	ownNS   uint64 // this process's own pid namespace; 0 unknown
	depth   int    // levels from /proc's namespace down to ownNS; -1 unknown
}

var view = sync.OnceValue(readView)

func readView() procView {
	v := procView{depth: -1}
	if link, err := os.Readlink("/proc/self"); err == nil {
		v.selfPID, _ = strconv.Atoi(link)
	}
	if v.selfPID > 0 {
		v.ownNS, _ = nsOf("/proc/self/ns/pid")
		if b, err := readFile("/proc/self/status"); err == nil {
			nspid, err := parseNSpid(b)
			switch {
			case err != nil:
			case nspid == nil: // Linux < 4.1 has no NSpid: trust the pids alone
				if v.selfPID == os.Getpid() {
					v.depth = 0
				}
			case nspid[0] == v.selfPID && nspid[len(nspid)-1] == os.Getpid():
				v.depth = len(nspid) - 1
			}
		}
	}
	if v.depth == 0 {
		v.same, v.ns = true, v.ownNS
		return v
	}
	v.ns = outerNS(v.selfPID)
	return v
}

// outerNS returns the pid namespace of a /proc that is not this process's
// own: that of the nearest ancestor of pid (/proc's number for this
// process, 0 if it has none) that lives there, or that of /proc's pid 1,
// the namespace's init. Reading a namespace link needs the right to ptrace
// the process, which an ancestor more likely grants than pid 1 does.
func outerNS(pid int) uint64 {
	for i := 0; i < 64 && pid > 0; i++ { // bounded: a pid chain is short
		b, err := readProc(pid, "status")
		if err != nil {
			break
		}
		nspid, err := parseNSpid(b)
		if err != nil || nspid == nil {
			break
		}
		if len(nspid) == 1 {
			if ns, err := nsOf("/proc/" + strconv.Itoa(pid) + "/ns/pid"); err == nil {
				return ns
			}
		}
		if pid, err = parent(pid); err != nil {
			break
		}
	}
	ns, _ := nsOf("/proc/1/ns/pid")
	return ns
}

func procNS() uint64 { return view().ns }

// lookup: pid is numbered as this process numbers pids. Usually /proc
// numbers them the same way; when it does not (a new pid namespace whose
// /proc is still the parent's mount), the process is found through /proc/self
// or NSpid, and its pid is given as /proc numbers it, the number later
// checks through the same /proc can verify.
func lookup(pid int) (Identity, error) {
	v := view()
	if v.same {
		id, err := lookupProc(pid)
		if err != nil {
			return Identity{}, err
		}
		id.NS = v.ns
		return id, nil
	}
	if pid == os.Getpid() {
		if v.selfPID == 0 {
			return Identity{}, fmt.Errorf("process %d: %w", pid, ErrOtherNamespace)
		}
		id, err := lookupPath(v.selfPID, "/proc/self/stat")
		if err != nil {
			return Identity{}, err
		}
		id.NS = v.ns
		return id, nil
	}
	if v.depth < 0 || v.ownNS == 0 {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrOtherNamespace)
	}
	procs, err := scanProc(true)
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: %w", pid, err)
	}
	cands := candidates(procs, v.ownNS, v.depth, pid)
	switch {
	case len(cands) == 0:
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	case len(cands) > 1 || !cands[0].sure:
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrOtherNamespace)
	}
	id, err := lookupProc(cands[0].pid)
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	// The start time was read after the scan: make sure /proc's pid still
	// names our pid, and not a process that took it since.
	b, err := readProc(id.PID, "status")
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	if nspid, err := parseNSpid(b); err != nil || len(nspid) != v.depth+1 || nspid[v.depth] != pid {
		return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	id.NS = v.ns
	return id, nil
}

// lookupIn: see LookupIn. The result is numbered as /proc numbers pids, so
// that Alive and later lookups through the same /proc can check it.
func lookupIn(peer, pid int) (Identity, error) {
	v := view()
	if peer == os.Getpid() {
		return lookup(pid)
	}
	if peer <= 0 {
		return Identity{}, fmt.Errorf("process %d: the asking process lives out of sight: %w", pid, ErrOtherNamespace)
	}
	if !v.same { // the peer is numbered as this process numbers pids, not as /proc does
		if v.ownNS == 0 {
			return Identity{}, fmt.Errorf("process %d: %w", pid, ErrOtherNamespace)
		}
		p, err := lookup(peer)
		if err != nil {
			return Identity{}, fmt.Errorf("process %d: its asker %d: %w", pid, peer, err)
		}
		if ns, err := nsOf("/proc/" + strconv.Itoa(p.PID) + "/ns/pid"); err != nil || ns != v.ownNS {
			return Identity{}, fmt.Errorf("process %d: the asking process's namespace is not this one: %w", pid, ErrOtherNamespace)
		}
		return lookup(pid)
	}
	b, err := readProc(peer, "status")
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: its asker %d: %w", pid, peer, ErrNoProcess)
	}
	nspid, err := parseNSpid(b)
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: its asker %d: %w", pid, peer, err)
	}
	if len(nspid) <= 1 { // the peer lives in /proc's namespace (or Linux < 4.1 shows none)
		return lookup(pid)
	}
	depth := len(nspid) - 1
	peerNS, err := nsOf("/proc/" + strconv.Itoa(peer) + "/ns/pid")
	if err != nil {
		return Identity{}, fmt.Errorf("process %d: the asking process's namespace: %v: %w", pid, err, ErrOtherNamespace)
	}
	found := 0
	if nspid[depth] == pid {
		found = peer
	} else {
		procs, err := scanProc(false)
		if err != nil {
			return Identity{}, fmt.Errorf("process %d: %w", pid, err)
		}
		for _, p := range procs {
			if len(p.nspid) == depth+1 && p.nspid[depth] == pid {
				if ns, err := nsOf("/proc/" + strconv.Itoa(p.pid) + "/ns/pid"); err == nil && ns == peerNS {
					found = p.pid
					break
				}
			}
		}
	}
	if found == 0 {
		return Identity{}, fmt.Errorf("process %d of the asker's namespace: %w", pid, ErrNoProcess)
	}
	id, err := lookupProc(found)
	if err != nil {
		return Identity{}, fmt.Errorf("process %d of the asker's namespace: %w", pid, ErrNoProcess)
	}
	// The start time was read after the search: make sure /proc's pid still
	// names the process found, and not one that took its pid since.
	b, err = readProc(found, "status")
	if err == nil {
		nspid, err = parseNSpid(b)
	}
	if err != nil || len(nspid) != depth+1 || nspid[depth] != pid {
		return Identity{}, fmt.Errorf("process %d of the asker's namespace: %w", pid, ErrNoProcess)
	}
	if ns, err := nsOf("/proc/" + strconv.Itoa(found) + "/ns/pid"); err != nil || ns != peerNS {
		return Identity{}, fmt.Errorf("process %d of the asker's namespace: %w", pid, ErrNoProcess)
	}
	id.NS = v.ns
	return id, nil
}

// aliveElsewhere finds id, recorded in another pid namespace than /proc's,
// by scanning /proc.
//
// Where this /proc is the initial namespace's and shows every process, each
// process is in view whatever namespace it lives in, with its pid in every
// namespace from the initial one down (NSpid): the owner runs if and only if
// some process has id.PID below the initial namespace's level, id.Start as
// its start time and, where its namespace link can be read (the process's
// owner or root may), id.NS as its namespace at that level (see
// judgeFromInit). Without the links, which the scan does not read, a
// container's leases are freed once it is gone, by any user; with them, also
// while a sibling whose process has the pid and start time runs. Elsewhere
// judge decides, and a namespace out of sight keeps its owners alive.
//
// A cross-namespace identity without a start time cannot be told from a
// later process with its pid, nor proven gone by a scan cached for others:
// it counts as alive.
func aliveElsewhere(id Identity) (bool, error) {
	if id.Start == 0 {
		return true, nil
	}
	start := func(pid int) (uint64, error) {
		cur, err := lookupProc(pid)
		return cur.Start, err
	}
	v := view()
	if v.ns == initPIDNS && seesAll() {
		procs, err := scans.get(id, false)
		if err != nil {
			return false, err
		}
		return judgeFromInit(procs, id, start, nsAbove), nil
	}
	procs, err := scans.get(id, true)
	if err != nil {
		return false, err
	}
	return judge(procs, id, v.ns, start), nil
}

// judgeFromInit decides whether the process id names runs, given a scan of
// the initial namespace's /proc that shows every process and began after
// the owner did, if it runs: a process whose pid in some namespace below the
// initial one is id.PID, whose start time is id.Start, and whose namespace
// at that level is id.NS (nsAt gives the namespace up levels above a
// process's own). Two containers' inits started in one tick have the same
// pid and start time: only the namespace tells them apart. What cannot be
// read counts for the owner: a process whose pids cannot be read counts if
// its start time matches, one whose start time cannot be read if its pids
// do, and one whose namespace cannot be read (another user's, without root)
// on its pid and start time alone.
func judgeFromInit(procs []procEntry, id Identity, start func(pid int) (uint64, error), nsAt func(pid, up int) (uint64, error)) bool {
	for _, p := range procs {
		if p.nspid != nil && (len(p.nspid) < 2 || !slices.Contains(p.nspid[1:], id.PID)) {
			continue
		}
		s, err := start(p.pid)
		if errors.Is(err, ErrNoProcess) {
			continue // exited since the scan
		}
		if err == nil && s != 0 && !startMatches(id.Start, s) {
			continue
		}
		if p.nspid == nil || inNamespace(p, id, nsAt) {
			return true
		}
	}
	return false
}

// inNamespace reports whether p, whose pid is id.PID at one or more levels
// below the initial namespace, has it in id.NS, or may have: a namespace
// that cannot be read counts, one of a process that has exited does not.
func inNamespace(p procEntry, id Identity, nsAt func(pid, up int) (uint64, error)) bool {
	own := len(p.nspid) - 1
	for level := 1; level <= own; level++ {
		if p.nspid[level] != id.PID {
			continue
		}
		ns, err := nsAt(p.pid, own-level)
		switch {
		case err == nil && ns == id.NS:
			return true
		case err == nil:
		case exited(err):
			return false
		default:
			return true
		}
	}
	return false
}

// nsAbove returns the pid namespace up levels above pid's own: its own
// through the link /proc/PID/ns/pid, its ancestors through NS_GET_PARENT
// (Linux 4.9) on it. Only the process's owner or root may open the link.
func nsAbove(pid, up int) (uint64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/ns/pid"
	if up == 0 {
		return nsOf(path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for i := range up {
		parent, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		unix.Close(fd)
		if err != nil {
			return 0, fmt.Errorf("%s: the namespace %d levels up: %w", path, i+1, err)
		}
		fd = parent
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("%s: the namespace %d levels up: %w", path, up, err)
	}
	return st.Ino, nil
}

// seesAll reports whether /proc lists every process for this one: true
// unless /proc is mounted with hidepid (other users' processes hidden)
// and this process is not root of the initial user namespace.
var seesAll = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	hidden := false
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 10 || f[4] != "/proc" {
			continue
		}
		i := slices.Index(f, "-")
		if i < 0 || i+3 >= len(f) || f[i+1] != "proc" {
			continue
		}
		hidden = false // the last mount on /proc is the one seen
		for _, o := range strings.Split(f[i+3], ",") {
			if v, ok := strings.CutPrefix(o, "hidepid="); ok && v != "0" && v != "off" {
				hidden = true
			}
		}
	}
	if !hidden {
		return true
	}
	userNS, err := readNSLink("/proc/self/ns/user")
	return err == nil && userNS == initUserNS && os.Geteuid() == 0
})

// initUserNS is the inode of the initial user namespace (PROC_USER_INIT_INO).
const initUserNS = 0xEFFFFFFD

// scanCache keeps the last scan of /proc for the identities of other
// namespaces asked soon after: a registry may ask for thousands at once (a
// queue full of files naming made-up namespaces), and one scan costs about
// a millisecond per hundred processes.
//
// A scan may answer for an identity only if the owner, were it running, is
// in it: the scan began after the owner started (with a margin for the tick
// an offset rounds into and for a fork's last steps, between the start time
// being taken and the process appearing in /proc), or the identity's start
// time is later than now, which no process has. Other identities get a new
// scan, which then serves those that follow; so identities made up with
// recent start times force new scans for at most twice the margin.
type scanCache struct {
	mu    sync.Mutex
	procs []procEntry
	links bool      // the namespace links were read
	taken time.Time // when the scan began
	stamp uint64    // the same, in normalised boot-time ticks
	n     atomic.Int64
}

// Cache limits.
const (
	scanTTL         = 100 * time.Millisecond
	scanMarginTicks = 5
)

var scans scanCache

// get returns a scan of /proc that may answer for id, with the namespace
// links read if links.
func (c *scanCache) get(id Identity, links bool) ([]procEntry, error) {
	tb := timeView()
	c.mu.Lock() // one scan at a time: those waiting may use it
	defer c.mu.Unlock()
	if c.procs != nil && time.Since(c.taken) < scanTTL && (c.links || !links) {
		now, ok := tb.nowTicks()
		if ok && (id.Start+scanMarginTicks <= c.stamp || id.Start > now+scanMarginTicks) {
			return c.procs, nil
		}
	}
	taken := time.Now()
	stamp, ok := tb.nowTicks()
	procs, err := scanProc(links)
	if err != nil {
		return nil, err
	}
	c.n.Add(1)
	c.procs = nil
	if ok {
		c.procs, c.links, c.taken, c.stamp = procs, links, taken, stamp
	}
	return procs, nil
}

// procEntry is one process as a scan of /proc found it.
type procEntry struct {
	pid   int    // as /proc numbers it
	nspid []int  // its pid in each namespace from /proc's down to its own; nil unknown
	ns    uint64 // its own pid namespace; 0 unknown (not ours to read)
}

// judge decides whether the process id names runs, given a scan of /proc
// taken after id was recorded; start tells a /proc pid's start time.
//
// A process that lives in id.NS gives the namespace's depth below /proc's.
// The owner, if it still runs, is then a process whose pid at that depth is
// id.PID: one that lives in id.NS for certain, or one whose namespace could
// not be read or lies deeper (a nested namespace, whose ancestors a scan
// cannot name); such a process counts if its start time matches. If no
// process lives in id.NS, the namespace is out of sight or gone: gone for
// certain only when seen from the initial namespace, which sees every
// other, with every process's namespace read; otherwise the owner counts as
// alive, since nothing here can tell.
func judge(procs []procEntry, id Identity, procNS uint64, start func(pid int) (uint64, error)) bool {
	depth, placed := -1, true
	for _, p := range procs {
		if p.ns == id.NS && len(p.nspid) > 0 {
			depth = len(p.nspid) - 1
			break
		}
		if p.ns == 0 || p.nspid == nil {
			placed = false
		}
	}
	if depth < 0 {
		return procNS != initPIDNS || !placed
	}
	for _, c := range candidates(procs, id.NS, depth, id.PID) {
		s, err := start(c.pid)
		if errors.Is(err, ErrNoProcess) {
			continue // exited since the scan
		}
		if err != nil || id.Start == 0 || s == 0 || startMatches(id.Start, s) {
			return true
		}
	}
	return false
}

// candidate is a /proc pid that may be the process numbered pid in a
// namespace; sure when it lives in that namespace itself.
type candidate struct {
	pid  int
	sure bool
}

// candidates returns the processes whose pid depth levels below /proc's
// namespace is pid and which may live in ns or below it.
func candidates(procs []procEntry, ns uint64, depth, pid int) []candidate {
	var out []candidate
	for _, p := range procs {
		if len(p.nspid) <= depth || p.nspid[depth] != pid {
			if p.nspid == nil {
				out = append(out, candidate{pid: p.pid}) // cannot tell its pids
			}
			continue
		}
		switch {
		case p.ns == ns && len(p.nspid) == depth+1:
			out = append(out, candidate{pid: p.pid, sure: true})
		case p.ns == 0 || len(p.nspid) > depth+1:
			out = append(out, candidate{pid: p.pid})
		}
		// otherwise a process of another namespace at the same depth
	}
	return out
}

// scanProc lists every process /proc shows with what it tells of its pid
// namespaces: its NSpid line, and its namespace link if links. Processes
// that exit during the scan are left out.
func scanProc(links bool) ([]procEntry, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	procs := make([]procEntry, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		p := procEntry{pid: pid}
		b, err := readProc(pid, "status")
		if exited(err) {
			continue
		}
		if err == nil {
			p.nspid, _ = parseNSpid(b)
		}
		if links {
			p.ns, err = nsOf("/proc/" + name + "/ns/pid")
			if exited(err) {
				continue
			}
		}
		procs = append(procs, p)
	}
	return procs, nil
}

func exited(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// nsOf reads a namespace link such as /proc/PID/ns/pid, "pid:[4026531836]",
// and returns the namespace's inode number.
func nsOf(path string) (uint64, error) {
	link, err := os.Readlink(path)
	if err != nil {
		return 0, err
	}
	return parseNSLink(link)
}

func parseNSLink(link string) (uint64, error) {
	s, ok := strings.CutPrefix(link, "pid:[")
	if ok {
		s, ok = strings.CutSuffix(s, "]")
	}
	if !ok {
		return 0, fmt.Errorf("malformed pid namespace link %q", link)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("malformed pid namespace link %q", link)
	}
	return n, nil
}

// parseNSpid returns the pids on the NSpid line of a /proc/PID/status file:
// the process's pid in each pid namespace from the one /proc was mounted in
// down to the process's own. It returns nil, nil where there is no such line
// (Linux before 4.1).
func parseNSpid(status []byte) ([]int, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("NSpid:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			return nil, errors.New("malformed NSpid: no pids")
		}
		pids := make([]int, len(f))
		for i, s := range f {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("malformed NSpid pid %q", s)
			}
			pids[i] = n
		}
		return pids, nil
	}
	return nil, nil
}
