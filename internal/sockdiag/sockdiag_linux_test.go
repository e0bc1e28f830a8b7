package sockdiag

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockInode returns the inode of the socket whose descriptor is fd.
func sockInode(t *testing.T, fd uintptr) uint64 {
	t.Helper()
	l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	if err != nil {
		t.Fatal(err)
	}
	var ino uint64
	if _, err := fmt.Sscanf(l, "socket:[%d]", &ino); err != nil {
		t.Fatalf("fd %d is %q: %v", fd, l, err)
	}
	return ino
}

func inode(t *testing.T, x any) uint64 {
	t.Helper()
	var ino uint64
	ctl := func(fd uintptr) { ino = sockInode(t, fd) }
	var err error
	switch v := x.(type) {
	case *net.TCPListener:
		rc, e := v.SyscallConn()
		if e != nil {
			t.Fatal(e)
		}
		err = rc.Control(ctl)
	case *net.TCPConn:
		rc, e := v.SyscallConn()
		if e != nil {
			t.Fatal(e)
		}
		err = rc.Control(ctl)
	case *net.UDPConn:
		rc, e := v.SyscallConn()
		if e != nil {
			t.Fatal(e)
		}
		err = rc.Control(ctl)
	default:
		t.Fatalf("inode of %T", x)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

func key(s Socket) string { return fmt.Sprintf("%s%d %s ino=%d", s.Proto, s.Family, s.Local, s.Inode) }

func keys(ss []Socket) []string {
	var k []string
	for _, s := range ss {
		k = append(k, key(s))
	}
	slices.Sort(k)
	return k
}

func mustLookup(t *testing.T, port int) []Socket {
	t.Helper()
	got, err := Lookup(port)
	if err != nil {
		t.Fatalf("Lookup(%d): %v", port, err)
	}
	for _, s := range got {
		if s.UID != uint32(os.Getuid()) {
			t.Errorf("Lookup(%d): %s has uid %d, want %d", port, key(s), s.UID, os.Getuid())
		}
	}
	return got
}

func TestLookup(t *testing.T) {
	v4 := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	port := portOf(v4.Addr())
	uc := listenUDP(t, "udp4", fmt.Sprintf("127.0.0.1:%d", port))
	want := []string{
		key(Socket{Proto: "tcp", Family: 4, Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), Inode: inode(t, v4)}),
		key(Socket{Proto: "udp", Family: 4, Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), Inode: inode(t, uc)}),
	}
	var dual *net.TCPListener
	if hasIPv6(t) {
		v6 := listen(t, "tcp6", fmt.Sprintf("[::1]:%d", port)).(*net.TCPListener)
		want = append(want, key(Socket{Proto: "tcp", Family: 6, Local: netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)), Inode: inode(t, v6)}))
		dual = listen(t, "tcp", "[::]:0").(*net.TCPListener)
	} else {
		t.Log("no IPv6: the ::1 and [::] listeners are not tested")
	}
	slices.Sort(want)
	if got := keys(mustLookup(t, port)); !slices.Equal(got, want) {
		t.Errorf("Lookup(%d):\n got %q\nwant %q", port, got, want)
	}

	if dual != nil {
		dp := portOf(dual.Addr())
		w := []string{key(Socket{Proto: "tcp", Family: 6, Local: netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(dp)), Inode: inode(t, dual)})}
		if got := keys(mustLookup(t, dp)); !slices.Equal(got, w) {
			t.Errorf("Lookup(%d) dual-stack:\n got %q\nwant %q", dp, got, w)
		}
	}
}

// TestLookupConnected checks that connected TCP sockets are not reported:
// neither the accepted one, which shares the listener's port, nor the
// client's.
func TestLookupConnected(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	port := portOf(ln.Addr())
	c := dial(t, "tcp4", ln.Addr().String())
	accept(t, ln)
	want := []string{key(Socket{Proto: "tcp", Family: 4, Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), Inode: inode(t, ln)})}
	if got := keys(mustLookup(t, port)); !slices.Equal(got, want) {
		t.Errorf("Lookup(%d) with an accepted connection:\n got %q\nwant %q", port, got, want)
	}
	if n := unfiltered.Load(); n != 0 {
		t.Errorf("the kernel sent %d sockets the filter should have kept back", n)
	}
	cport := portOf(c.LocalAddr())
	if got := mustLookup(t, cport); len(got) != 0 {
		t.Errorf("Lookup(%d) of a connected client socket = %q, want nothing", cport, keys(got))
	}
}

// TestHoldingPorts checks LookupPorts and Holding with several ports: only
// the ports asked for come back, each with this process as its holder.
func TestHoldingPorts(t *testing.T) {
	a := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	b := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	c := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener) // not asked for
	pa, pb, pc := portOf(a.Addr()), portOf(b.Addr()), portOf(c.Addr())
	socks, err := Holding(pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]int{}
	for _, s := range socks {
		got[int(s.Local.Port())] = s.PIDs
	}
	me := []int{os.Getpid()}
	if !slices.Equal(got[pa], me) || !slices.Equal(got[pb], me) || len(got) != 2 {
		t.Errorf("Holding(%d, %d) with %d also listening: %v, want both held by %v and nothing else", pa, pb, pc, got, me)
	}
	if socks, err := LookupPorts(nil); err != nil || len(socks) != 0 {
		t.Errorf("LookupPorts(nil) = %v, %v; want nothing", socks, err)
	}
	if _, err := LookupPorts([]int{pa, 70000}); err == nil {
		t.Error("LookupPorts with port 70000: no error")
	}
}

func TestLookupBadPort(t *testing.T) {
	for _, p := range []int{0, -1, 65536} {
		if _, err := Lookup(p); err == nil {
			t.Errorf("Lookup(%d): no error", p)
		}
	}
}

func TestHoldersShared(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	other := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	child := startChild(t, ln)
	ino, oino := inode(t, ln), inode(t, other)
	got, err := Holders([]uint64{ino, oino, 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]int{ino: {os.Getpid(), child.Process.Pid}, oino: {os.Getpid()}}
	slices.Sort(want[ino])
	if len(got) != len(want) || !slices.Equal(got[ino], want[ino]) || !slices.Equal(got[oino], want[oino]) {
		t.Errorf("Holders = %v, want %v", got, want)
	}
	if got, err := Holders(nil); err != nil || len(got) != 0 {
		t.Errorf("Holders(nil) = %v, %v", got, err)
	}
}

var ssUser = regexp.MustCompile(`pid=(\d+)`)
var ssIno = regexp.MustCompile(`ino:(\d+)`)

// TestAgreesWithSS checks Lookup and Holders against iproute2's ss on the
// same sockets: the same protocols, inodes and pids.
func TestAgreesWithSS(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) not installed")
	}
	v4 := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	port := portOf(v4.Addr())
	listenUDP(t, "udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if hasIPv6(t) {
		listen(t, "tcp6", fmt.Sprintf("[::1]:%d", port))
	}
	startChild(t, v4)
	// A dual-stack listener on its own port, checked the same way.
	ports := []int{port}
	if hasIPv6(t) {
		ports = append(ports, portOf(listen(t, "tcp", "[::]:0").Addr()))
	}
	for _, p := range ports {
		out, err := exec.Command("ss", "-H", "-ltnupe", "sport", "=", fmt.Sprintf(":%d", p)).Output()
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		var fromSS []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" {
				continue
			}
			m := ssIno.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("ss line without inode: %q", line)
			}
			var pids []string
			for _, pm := range ssUser.FindAllStringSubmatch(line, -1) {
				pids = append(pids, pm[1])
			}
			slices.Sort(pids)
			pids = slices.Compact(pids)
			fromSS = append(fromSS, fmt.Sprintf("%s ino=%s pids=%s", strings.Fields(line)[0], m[1], strings.Join(pids, ",")))
		}
		slices.Sort(fromSS)

		socks := mustLookup(t, p)
		var inos []uint64
		for _, s := range socks {
			inos = append(inos, s.Inode)
		}
		h, err := Holders(inos)
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, s := range socks {
			var pids []string
			for _, pid := range h[s.Inode] {
				pids = append(pids, strconv.Itoa(pid))
			}
			slices.Sort(pids)
			ours = append(ours, fmt.Sprintf("%s ino=%d pids=%s", s.Proto, s.Inode, strings.Join(pids, ",")))
		}
		slices.Sort(ours)
		if !slices.Equal(ours, fromSS) {
			t.Errorf("port %d:\nsockdiag %q\n      ss %q\nss said:\n%s", p, ours, fromSS, out)
		}
	}
}

// The TIME_WAIT sockets are made once per test process.
var (
	twOnce  sync.Once
	twPort  int
	twCount int
	twSkip  string
)

func BenchmarkLookup(b *testing.B) {
	ln := listen(b, "tcp4", "127.0.0.1:0")
	port := portOf(ln.Addr())
	b.ReportAllocs()
	for b.Loop() {
		s, err := Lookup(port)
		if err != nil || len(s) != 1 {
			b.Fatalf("Lookup = %v, %v", s, err)
		}
	}
}

// makeTimeWait makes up to max TIME_WAIT sockets on a loopback listener's
// port, within limit: the server closes each connection first, so the
// TIME_WAIT sockets carry the listener's port, the worst case for a lookup
// of that port. Clients bind to 64 addresses 127.0.1.x so that a client
// port drawn twice, whose SYN would recycle the TIME_WAIT socket instead of
// making another, is rare. The listener stays open for the rest of the
// process.
func makeTimeWait(max int, limit time.Duration) (port, made int, err error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	port = portOf(ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	deadline := time.Now().Add(limit)
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [1]byte
			for {
				i := int(next.Add(1)) - 1
				if i >= max || time.Now().After(deadline) {
					return
				}
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%64))}}
				c, err := d.Dial("tcp4", ln.Addr().String())
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				c.Read(buf[:]) // EOF: the server closed first
				c.Close()
			}
		}()
	}
	wg.Wait()
	made, err = countTCP(port, 1<<tcpTimeWait)
	if err != nil {
		return port, 0, err
	}
	return port, made, firstErr
}

func setupTimeWait(b *testing.B) {
	twOnce.Do(func() {
		var err error
		twPort, twCount, err = makeTimeWait(50000, 30*time.Second)
		if twCount < 10000 {
			twSkip = fmt.Sprintf("only %d TIME_WAIT sockets made (ephemeral ports, tcp_max_tw_buckets or 30 s): %v", twCount, err)
		}
	})
	if twSkip != "" {
		b.Skip(twSkip)
	}
}

func BenchmarkLookupTimeWait(b *testing.B) {
	setupTimeWait(b)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Lookup(twPort)
		if err != nil || len(s) != 1 {
			b.Fatalf("Lookup = %v, %v", s, err)
		}
	}
	b.ReportMetric(float64(twCount), "timewait")
}

// BenchmarkDumpAllStatesTimeWait is the tcp4 dump Lookup would make if it
// asked for every state with the same port filter: the kernel then walks the
// established hash and sends every TIME_WAIT socket on the port. It shows
// what limiting the states to LISTEN saves.
func BenchmarkDumpAllStatesTimeWait(b *testing.B) {
	setupTimeWait(b)
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	var out []Socket
	for b.Loop() {
		if out, err = dump(fd, buf, unix.AF_INET, unix.IPPROTO_TCP, ^uint32(0), uint16(twPort), uint16(twPort), nil, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(out)), "sockets")
	b.ReportMetric(float64(twCount), "timewait")
}

func BenchmarkHolders(b *testing.B) {
	ln := listen(b, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	rc, _ := ln.SyscallConn()
	var ino uint64
	rc.Control(func(fd uintptr) {
		l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
		fmt.Sscanf(l, "socket:[%d]", &ino)
	})
	b.ReportAllocs()
	for b.Loop() {
		h, err := Holders([]uint64{ino})
		if err != nil || len(h[ino]) != 1 {
			b.Fatalf("Holders = %v, %v", h, err)
		}
	}
}

// TestDirents reads a directory with getdents and dirents and checks it
// finds the names os.ReadDir finds, long ones included.
func TestDirents(t *testing.T) {
	dir := t.TempDir()
	want := []string{"0", "12", strings.Repeat("n", 255), "socket", "a.b"}
	for _, n := range want {
		if err := os.WriteFile(dir+"/"+n, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var got []string
	buf := make([]byte, 300) // small, so that one read cannot hold them all
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		dirents(buf[:n], func(name []byte, cname *byte) bool {
			if *cname != name[0] {
				t.Errorf("cname does not point at %q", name)
			}
			got = append(got, string(name))
			return true
		})
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dirents found %q, want %q", got, want)
	}
}

// FuzzDirents feeds dirents what a broken getdents could return: it must
// not panic, and each name it gives is non-empty, NUL-free and NUL-ended
// in the buffer.
func FuzzDirents(f *testing.F) {
	rec := func(name string) []byte {
		n := (19 + len(name) + 1 + 7) &^ 7
		b := make([]byte, n)
		b[16], b[17] = byte(n), byte(n>>8)
		copy(b[19:], name)
		return b
	}
	f.Add(slices.Concat(rec("."), rec(".."), rec("3"), rec("42")))
	f.Add(rec("x")[:10])
	f.Add([]byte{0: 0, 16: 0xff, 17: 0xff, 30: 0})
	f.Add(make([]byte, 19))
	f.Fuzz(func(t *testing.T, b []byte) {
		dirents(b, func(name []byte, cname *byte) bool {
			if len(name) == 0 || slices.Contains(name, 0) || *cname != name[0] {
				t.Fatalf("bad name %q", name)
			}
			if end := unsafe.Add(unsafe.Pointer(cname), len(name)); *(*byte)(end) != 0 {
				t.Fatalf("name %q is not NUL-ended", name)
			}
			return true
		})
	})
}

func TestAtou(t *testing.T) {
	for s, want := range map[string]uint64{"0": 0, "42": 42, "9999999999999999999": 9999999999999999999} {
		if got, ok := atou([]byte(s)); !ok || got != want {
			t.Errorf("atou(%q) = %d, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "-1", "1a", "+1", "18446744073709551616", "99999999999999999999"} {
		if got, ok := atou([]byte(s)); ok {
			t.Errorf("atou(%q) = %d, want failure", s, got)
		}
	}
}
