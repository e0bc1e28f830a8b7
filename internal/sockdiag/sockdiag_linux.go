package sockdiag

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel constants from include/uapi/linux/inet_diag.h and net/tcp_states.h
// that golang.org/x/sys/unix does not define.
const (
	inetDiagReqBytecode = 1 // INET_DIAG_REQ_BYTECODE attribute
	inetDiagBcSGE       = 2 // INET_DIAG_BC_S_GE
	inetDiagBcSLE       = 3 // INET_DIAG_BC_S_LE

	tcpTimeWait = 6
	tcpListen   = 10

	sizeofReqV2   = 56 // struct inet_diag_req_v2
	sizeofDiagMsg = 72 // struct inet_diag_msg
	sizeofBC      = 16 // two port comparisons of two inet_diag_bc_op each
	sizeofRequest = unix.SizeofNlMsghdr + sizeofReqV2 + unix.SizeofNlAttr + sizeofBC
)

// unfiltered counts the sockets the kernel sent that the filter should have
// kept back; the tests check it stays zero.
var unfiltered atomic.Int64

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// Lookup returns every socket listening (TCP, state LISTEN) or bound (UDP,
// any state) on the local port, IPv4 and IPv6, of every user. Sockets in
// other network namespaces are not seen. An empty result with a nil error
// means nothing holds the port.
func Lookup(port int) ([]Socket, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("sockdiag: port %d out of range 1-65535", port)
	}
	return lookup(uint16(port), uint16(port), nil)
}

// LookupPorts is [Lookup] for several ports at once: four dumps in all,
// filtered in the kernel to the range from the lowest port to the highest,
// then to the ports themselves. Sockets come in the order of the dumps
// (tcp4, tcp6, udp4, udp6), not of ports.
func LookupPorts(ports []int) ([]Socket, error) {
	want, err := portSet(ports)
	if err != nil || len(want) == 0 {
		return nil, err
	}
	lo, hi := uint16(65535), uint16(1)
	for p := range want {
		lo, hi = min(lo, p), max(hi, p)
	}
	if lo == hi {
		want = nil
	}
	return lookup(lo, hi, want)
}

// Holding returns the sockets on any of ports, as [LookupPorts], with the
// pids holding each (Socket.PIDs) from [Holders].
func Holding(ports ...int) ([]Socket, error) {
	socks, err := LookupPorts(ports)
	if err != nil || len(socks) == 0 {
		return socks, err
	}
	inodes := make([]uint64, len(socks))
	for i, s := range socks {
		inodes[i] = s.Inode
	}
	pids, err := Holders(inodes)
	if err != nil {
		return nil, err
	}
	for i := range socks {
		socks[i].PIDs = pids[socks[i].Inode]
	}
	return socks, nil
}

// lookup makes the four dumps for local ports lo..hi, keeping only the
// ports in want when it is not nil.
func lookup(lo, hi uint16, want map[uint16]bool) ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sockdiag: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)

	var out []Socket
	for _, q := range [...]struct {
		proto  uint8
		family uint8
		states uint32
	}{
		{unix.IPPROTO_TCP, unix.AF_INET, 1 << tcpListen},
		{unix.IPPROTO_TCP, unix.AF_INET6, 1 << tcpListen},
		{unix.IPPROTO_UDP, unix.AF_INET, ^uint32(0)},
		{unix.IPPROTO_UDP, unix.AF_INET6, ^uint32(0)},
	} {
		out, err = dump(fd, *bp, q.family, q.proto, q.states, lo, hi, want, out)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dump sends one SOCK_DIAG_BY_FAMILY dump request for the family, protocol
// and states, filtered in the kernel to source ports lo..hi, and appends the
// sockets of the answer whose port is in want (any, when want is nil) to
// out.
func dump(fd int, buf []byte, family, proto uint8, states uint32, lo, hi uint16, want map[uint16]bool, out []Socket) ([]Socket, error) {
	ne := binary.NativeEndian
	var req [sizeofRequest]byte
	// struct nlmsghdr
	ne.PutUint32(req[0:], sizeofRequest)
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1) // sequence number
	// struct inet_diag_req_v2: family, protocol, ext, pad, states, then
	// struct inet_diag_sockid left zero (no address or cookie match).
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = family, proto
	ne.PutUint32(r[4:], states)
	// struct nlattr INET_DIAG_REQ_BYTECODE, then the bytecode. Each op is
	// struct inet_diag_bc_op {u8 code; u8 yes; u16 no} followed by an op
	// whose no field holds the port (host order); yes and no are the byte
	// offsets to jump by, and a program accepts when it lands exactly on its
	// end: "sport >= lo" then "sport <= hi"; a failed test jumps 4 bytes
	// past the end, a rejection.
	a := r[sizeofReqV2:]
	ne.PutUint16(a[0:], unix.SizeofNlAttr+sizeofBC)
	ne.PutUint16(a[2:], inetDiagReqBytecode)
	bc := a[unix.SizeofNlAttr:]
	bc[0], bc[1] = inetDiagBcSGE, 8
	ne.PutUint16(bc[2:], 8+12)
	ne.PutUint16(bc[6:], lo)
	bc[8], bc[9] = inetDiagBcSLE, 8
	ne.PutUint16(bc[10:], 12)
	ne.PutUint16(bc[14:], hi)

	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return out, fmt.Errorf("sockdiag: netlink send: %w", err)
	}
	pname := "tcp"
	if proto == unix.IPPROTO_UDP {
		pname = "udp"
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("sockdiag: netlink receive: %w", err)
		}
		b := buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(ne.Uint32(b[0:]))
			typ := ne.Uint16(b[4:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return out, errors.New("sockdiag: malformed netlink message")
			}
			data := b[unix.SizeofNlMsghdr:l]
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			switch typ {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(data) >= 4 {
					if e := int32(ne.Uint32(data)); e != 0 {
						return out, fmt.Errorf("sockdiag: %s%c dump: %w", pname, famDigit(family), unix.Errno(-e))
					}
				}
				return out, nil
			case unix.SOCK_DIAG_BY_FAMILY:
			default:
				continue
			}
			if len(data) < sizeofDiagMsg {
				return out, errors.New("sockdiag: short inet_diag_msg")
			}
			state := data[1]
			sport := binary.BigEndian.Uint16(data[4:])
			// The kernel filtered already; checking again costs nothing
			// and guards against a kernel that ignored the filter.
			if sport < lo || sport > hi || (proto == unix.IPPROTO_TCP && states&(1<<state) == 0) {
				unfiltered.Add(1)
				continue
			}
			if want != nil && !want[sport] {
				continue
			}
			var addr netip.Addr
			fam := 4
			if data[0] == unix.AF_INET6 {
				addr = netip.AddrFrom16([16]byte(data[8:24]))
				fam = 6
			} else {
				addr = netip.AddrFrom4([4]byte(data[8:12]))
			}
			out = append(out, Socket{
				Proto:  pname,
				Family: fam,
				Local:  netip.AddrPortFrom(addr, sport),
				UID:    ne.Uint32(data[64:]),
				Inode:  uint64(ne.Uint32(data[68:])),
			})
		}
	}
}

func famDigit(family uint8) byte {
	if family == unix.AF_INET6 {
		return '6'
	}
	return '4'
}

// countTCP counts the TCP sockets in the given states on the local port, of
// both families; the benchmarks use it to check how many TIME_WAIT sockets
// they made.
func countTCP(port int, states uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	var out []Socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if out, err = dump(fd, buf, fam, unix.IPPROTO_TCP, states, uint16(port), uint16(port), nil, out); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// Holders maps each of the socket inodes to the pids of the processes that
// have a file descriptor on it, by reading the /proc/PID/fd links of every
// process. Processes it cannot read (other users' without privilege:
// EACCES; processes that exit meanwhile) are skipped, so an inode of another
// user's socket may be absent from the map. Each pid appears once per inode,
// in ascending order.
//
// Every process is read even once every inode has been found: a socket can
// be held by several processes (a server and the children it forked, socket
// activation, descriptors passed over a Unix socket), and stopping at the
// first holder would give an incomplete answer, one a caller stopping the
// holders of a port would act on wrongly. Holders stops early only when
// inodes is empty.
func Holders(inodes []uint64) (map[uint64][]int, error) {
	res := make(map[uint64][]int, len(inodes))
	if len(inodes) == 0 {
		return res, nil
	}
	want := make(map[uint64]bool, len(inodes))
	for _, ino := range inodes {
		want[ino] = true
	}
	pids, err := listPIDs()
	if err != nil {
		return nil, err
	}
	// The scan is system calls and nothing else (an open, getdents and a
	// readlinkat per descriptor, for every process), so it is split among
	// the CPUs the program lets run at once: on two cores it takes about
	// half the time. The CLI runs on one (see cmd/portfor/internal/startup).
	workers := min(runtime.GOMAXPROCS(0), 4, max(len(pids)/32, 1))
	if workers == 1 {
		res = scanFDs(pids, want)
		for _, pids := range res {
			slices.Sort(pids)
		}
		return res, nil
	}
	parts := make([]map[uint64][]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[w] = scanFDs(pids[w*len(pids)/workers:(w+1)*len(pids)/workers], want)
		}()
	}
	wg.Wait()
	for _, part := range parts {
		for ino, pids := range part {
			res[ino] = append(res[ino], pids...)
		}
	}
	for _, pids := range res {
		slices.Sort(pids)
	}
	return res, nil
}

// scanFDs reads the /proc/PID/fd links of the processes pids and returns,
// for each socket inode in want, the pids holding it.
func scanFDs(pids []int, want map[uint64]bool) map[uint64][]int {
	res := map[uint64][]int{}
	var fr fdReader
	for _, pid := range pids {
		fr.sockets(pid, func(ino uint64) bool {
			if want[ino] {
				if pids := res[ino]; len(pids) == 0 || pids[len(pids)-1] != pid {
					res[ino] = append(pids, pid)
				}
			}
			return false
		})
	}
	return res
}

// listPIDs returns the pids of /proc, in the order the directory lists them.
func listPIDs() ([]int, error) {
	fd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sockdiag: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 16<<10)
	pids := make([]int, 0, 256)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("sockdiag: reading /proc: %w", err)
		}
		if n <= 0 {
			return pids, nil
		}
		dirents(buf[:n], func(name []byte, _ *byte) bool {
			if pid, ok := atou(name); ok && pid > 0 && pid <= math.MaxInt32 {
				pids = append(pids, int(pid))
			}
			return true
		})
	}
}

// atou parses a decimal number of at most 19 digits (so it cannot
// overflow), without allocating.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// dirents calls fn for each entry of buf, records getdents64(2) returned,
// with the entry's name and a pointer to the name's NUL-terminated copy in
// buf (for a system call taking a path relative to the directory), until
// fn returns false. "." and ".." are skipped; it returns whether fn asked
// to go on.
func dirents(buf []byte, fn func(name []byte, cname *byte) bool) bool {
	const nameOff = 19 // struct linux_dirent64: d_ino, d_off, d_reclen, d_type, d_name
	for len(buf) > nameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen <= nameOff || reclen > len(buf) {
			return true
		}
		rec := buf[nameOff:reclen]
		buf = buf[reclen:]
		n := bytes.IndexByte(rec, 0)
		if n <= 0 || (n == 1 && rec[0] == '.') || (n == 2 && rec[0] == '.' && rec[1] == '.') {
			continue
		}
		if !fn(rec[:n], &rec[0]) {
			return false
		}
	}
	return true
}

// Holds reports whether process pid (as /proc numbers it) has a file
// descriptor on any of the socket inodes: what a caller about to act on a
// holder [Holders] found checks again just before. It is false when the
// process's descriptors cannot be read (another user's without privilege,
// or it exited). Linux only.
func Holds(pid int, inodes []uint64) bool {
	if pid <= 0 || len(inodes) == 0 {
		return false
	}
	var fr fdReader
	found := false
	fr.sockets(pid, func(ino uint64) bool {
		found = slices.Contains(inodes, ino)
		return found
	})
	return found
}

// fdReader reads the sockets processes hold from their /proc/PID/fd links,
// reusing its buffers from one process to the next.
type fdReader struct {
	path []byte // "/proc/PID/fd" and its NUL
	db   []byte // getdents buffer
	lb   [64]byte
}

// sockets calls found with the inode of each socket process pid has a
// descriptor on, until found returns true. A process whose descriptors
// cannot be read (EACCES: not ours to see; ENOENT: it exited) has none.
// Nothing is allocated per descriptor: links are read by the names
// getdents left in the buffer.
func (r *fdReader) sockets(pid int, found func(ino uint64) bool) {
	if r.db == nil {
		r.db = make([]byte, 8<<10)
	}
	r.path = append(strconv.AppendInt(append(r.path[:0], "/proc/"...), int64(pid), 10), "/fd\x00"...)
	// Links are read relative to the fd directory's descriptor: a full
	// /proc/PID/fd/N path walk per descriptor made Holders 1.8 times
	// slower (2.95 ms against 1.63 ms for 67 processes and 466
	// descriptors).
	dfd, err := openDir(&r.path[0])
	if err != nil {
		return
	}
	defer unix.Close(dfd)
	for {
		n, err := unix.Getdents(dfd, r.db)
		if err != nil || n <= 0 {
			return
		}
		more := dirents(r.db[:n], func(_ []byte, cname *byte) bool {
			n, err := readlinkat(dfd, cname, r.lb[:])
			if err == unix.EACCES {
				// Whether a process's links may be read is decided for
				// the process as a whole (ptrace access): the others
				// would fail too.
				return false
			}
			lb := r.lb[:max(n, 0)]
			if err != nil || len(lb) < len("socket:[1]") || string(lb[:8]) != "socket:[" || lb[len(lb)-1] != ']' {
				return true
			}
			ino, ok := atou(lb[8 : len(lb)-1])
			return !ok || !found(ino)
		})
		if !more {
			return
		}
	}
}

// openDir opens the directory at the NUL-terminated path p.
func openDir(p *byte) (int, error) {
	cwd := unix.AT_FDCWD
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(p)),
		uintptr(unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// readlinkat reads the link named by the NUL-terminated name in directory
// dfd into buf.
func readlinkat(dfd int, name *byte, buf []byte) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
