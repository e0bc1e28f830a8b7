//go:build darwin || linux

package sockdiag

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/portfor/portfor/internal/lsof/lsoftest"
)

func sock(proto string, family int, local string, uid uint32, inode uint64, pids ...int) Socket {
	return Socket{Proto: proto, Family: family, Local: netip.MustParseAddrPort(local), UID: uid, Inode: inode, PIDs: pids}
}

func set(ports ...uint16) map[uint16]bool {
	m := map[uint16]bool{}
	for _, p := range ports {
		m[p] = true
	}
	return m
}

// lsofSamples are lsof field outputs with what parseLsof must make of them.
// The linux ones are real: lsof 4.95 run as lsofArgs runs it (and with -F
// alone, every field) on listeners made for it, a process and a child it
// forked sharing them: TCP and UDP on 127.0.0.1 and [::1], TCP on [::],
// 0.0.0.0 and ::ffff:127.0.0.1, a connection to the first port (both ends,
// ESTABLISHED), a UDP socket connected to it (lsof matches the remote port
// too), and a TCP socket bound but not listening (absent: lsof does not
// list it). The darwin ones are written from lsof's documented field
// output and its darwin dialect (dsock.c): the device is the socket's
// kernel address, an IPv6 socket with an IPv4-mapped address shows the
// IPv4 address, an IPv6 socket that also takes IPv4 shows "*".
var lsofSamples = []struct {
	file  string
	want  map[uint16]bool
	socks []Socket
}{
	{"linux.txt", set(47191, 48635, 36369, 52159, 42313), []Socket{
		sock("tcp", 4, "0.0.0.0:36369", 0, 298371, 19112, 19161),
		sock("tcp", 4, "127.0.0.1:47191", 0, 298366, 19112, 19161),
		sock("tcp", 6, "[::1]:47191", 0, 298369, 19112, 19161),
		sock("tcp", 6, "[::]:48635", 0, 298370, 19112, 19161),
		sock("tcp", 6, "[::ffff:127.0.0.1]:52159", 0, 298372, 19112, 19161),
		sock("udp", 4, "127.0.0.1:47191", 0, 298367, 19112, 19161),
		sock("udp", 6, "[::1]:47191", 0, 298368, 19112, 19161),
	}},
	{"linux-all-fields.txt", set(58899, 45071, 60307, 36173, 36519), []Socket{
		sock("tcp", 4, "127.0.0.1:58899", 0, 299504, 19575, 19616),
		sock("tcp", 4, "0.0.0.0:60307", 0, 299509, 19575, 19616),
		sock("tcp", 6, "[::ffff:127.0.0.1]:36173", 0, 299510, 19575, 19616),
		sock("tcp", 6, "[::]:45071", 0, 299508, 19575, 19616),
		sock("tcp", 6, "[::1]:58899", 0, 299507, 19575, 19616),
		sock("udp", 4, "127.0.0.1:58899", 0, 299505, 19575, 19616),
		sock("udp", 6, "[::1]:58899", 0, 299506, 19575, 19616),
	}},
	{"darwin.txt", set(53, 5353, 8080, 8081), []Socket{
		sock("tcp", 4, "127.0.0.1:8080", 501, 0x5c1d3c8e6a2ba301, 512),
		sock("tcp", 6, "[::]:8080", 501, 0x5c1d3c8e6a2b9f01, 512, 513),
		sock("tcp", 6, "[::1]:8080", 501, 0x5c1d3c8e6a2bb101, 512),
		sock("tcp", 6, "[::ffff:127.0.0.1]:8081", 501, 0x5c1d3c8e6a2bd201, 512),
		sock("udp", 4, "0.0.0.0:5353", 501, 0x5c1d3c8e6a11d401, 512),
		sock("udp", 6, "[fe80::1%lo0]:53", 501, 0x5c1d3c8e6a11d701, 512),
	}},
	{"darwin-all-fields.txt", set(5353), []Socket{
		sock("tcp", 4, "127.0.0.1:5353", 501, 0x9f3ab2c4611b2e41, 1403),
		sock("udp", 4, "0.0.0.0:5353", 65, 0x9f3ab2c45e1d7a01, 88),
		sock("udp", 6, "[::]:5353", 65, 0x9f3ab2c45e1d7c11, 88),
	}},
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "lsof", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLsofSamples(t *testing.T) {
	for _, c := range lsofSamples {
		got, err := parseLsof(readSample(t, c.file), c.want)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if !reflect.DeepEqual(got, c.socks) {
			t.Errorf("%s:\n got %v\nwant %v", c.file, got, c.socks)
		}
	}
	// Only the ports asked for, by local port: the UDP socket connected
	// from 59702 to 47191 is dropped above, where lsof listed it for its
	// remote port, and found when 59702 is asked for: it is bound there.
	for port, w := range map[uint16][]Socket{
		36369: {sock("tcp", 4, "0.0.0.0:36369", 0, 298371, 19112, 19161)},
		59702: {sock("udp", 4, "127.0.0.1:59702", 0, 298375, 19112, 19161)},
	} {
		got, err := parseLsof(readSample(t, "linux.txt"), set(port))
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("linux.txt for port %d: %v, %v; want %v", port, got, err, w)
		}
	}
}

const lsofHead = "p7\nu1\nf3\n"

func TestParseLsofRejects(t *testing.T) {
	for _, bad := range []string{
		"f3\ntIPv4\n",
		"p7\nf3\n",
		"p\n", "px\n", "p0\n", "p-4\n", "p99999999999999999999\n",
		"p7\nu\n", "p7\nux\n", "p7\nu-1\n", "p7\nu4294967296\n",
		"u1\n",
		lsofHead + "u1\n",
		"n127.0.0.1:80\n",
		"p7\nu1\nPTCP\n",
		lsofHead + "tIPv4\nPTCP\nn127.0.0.1:80\n",
		lsofHead + "tsock\nPTCP\nn127.0.0.1:80\nTST=LISTEN\n",
		lsofHead + "tIPv4\nPUDP\n",
		lsofHead + "tIPv4\nPUDP\nn\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1:0\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1:65536\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1:+80\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1:http\n",
		lsofHead + "tIPv4\nPUDP\nnlocalhost:80\n",
		lsofHead + "tIPv4\nPUDP\nn[::1]:80\n",
		lsofHead + "tIPv6\nPUDP\nn::1:80\n",
		lsofHead + "tIPv6\nPUDP\nn[::1:80\n",
		lsofHead + "tIPv6\nPUDP\nn[127.0.0.1]:80\n",
		lsofHead + "tIPv6\nPUDP\nn[]:80\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1%eth0:80\n",
		lsofHead + "tIPv4\nPUDP\nn127.0.0.1:80\nf4\ntIPv4\nPUDP\nn*\n",
	} {
		if got, err := parseLsof([]byte(bad), nil); err == nil {
			t.Errorf("%q: %v, no error", bad, got)
		}
	}
}

func TestParseLsofEdges(t *testing.T) {
	for _, c := range []struct {
		out  string
		want []Socket
	}{
		{"", nil},
		{"p7\n", nil},
		{"p7\nu1\n\n\n", nil},
		// Another protocol, TCP not listening: not sockets asked for.
		{lsofHead + "tIPv4\nPICMP\n", nil},
		{lsofHead + "tIPv4\nPTCP\nn127.0.0.1:80->127.0.0.1:9\nTST=ESTABLISHED\n", nil},
		// No device: the inode tells sockets apart; neither: the address.
		{lsofHead + "tIPv4\ni12\nPUDP\nn*:80\nf4\ntIPv4\ni12\nPUDP\nn*:80\np9\nu2\nf3\ntIPv4\ni13\nPUDP\nn*:80\n",
			[]Socket{sock("udp", 4, "0.0.0.0:80", 1, 12, 7), sock("udp", 4, "0.0.0.0:80", 2, 13, 9)}},
		{"p9\nu2\nf3\ntIPv6\nPUDP\nn[::1]:80\np7\nu1\nf3\ntIPv6\nPUDP\nn[::1]:80\n",
			[]Socket{sock("udp", 6, "[::1]:80", 1, 0, 7, 9)}},
		// A socket shared by processes of two users: the lowest pid's uid.
		{"p9\nu2\nf3\ntIPv4\nd5\nPTCP\nn*:80\nTST=LISTEN\np7\nu1\nf3\ntIPv4\nd5\nPTCP\nn*:80\nTST=LISTEN\n",
			[]Socket{sock("tcp", 4, "0.0.0.0:80", 1, 5, 7, 9)}},
		// An IPv4-mapped address on an IPv4 socket is its IPv4 address.
		{lsofHead + "tIPv4\nPUDP\nn[::ffff:10.0.0.1]:80\n", []Socket{sock("udp", 4, "10.0.0.1:80", 1, 0, 7)}},
		// Fields parseLsof has no use for are passed over.
		{lsofHead + "tIPv4\nZx\nPTCP\nTQR=0\nn127.0.0.1:80\nTST=LISTEN\nTSO=1\n", []Socket{sock("tcp", 4, "127.0.0.1:80", 1, 0, 7)}},
	} {
		got, err := parseLsof([]byte(c.out), nil)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %v, %v\nwant %v", c.out, got, err, c.want)
		}
	}
}

func TestPortSpec(t *testing.T) {
	if got := portSpec(set(80, 8000, 8001, 8002, 443, 9000, 9001)); got != "80,443,8000-8002,9000-9001" {
		t.Errorf("portSpec = %q", got)
	}
	if got := portSpec(set(22)); got != "22" {
		t.Errorf("portSpec(22) = %q", got)
	}
	every2 := map[uint16]bool{}
	for p := 2; p <= 65535; p += 2 {
		every2[uint16(p)] = true
	}
	if got := portSpec(every2); got != "2-65534" {
		t.Errorf("portSpec of every even port = %q, want the span", got)
	}
}

// FuzzParseLsof checks that no output makes parseLsof panic, and that what
// it returns are sockets it was asked for and could read.
func FuzzParseLsof(f *testing.F) {
	for _, c := range lsofSamples {
		f.Add(readSample(f, c.file), uint16(0))
	}
	f.Add([]byte(lsofHead+"tIPv6\nPUDP\nn[fe80::1%lo0]:53\n"), uint16(53))
	f.Add([]byte(lsofHead+"tIPv4\nPTCP\nn*:80\nTST=LISTEN\nf4\n"), uint16(80))
	f.Fuzz(func(t *testing.T, out []byte, port uint16) {
		var want map[uint16]bool
		if port != 0 {
			want = set(port)
		}
		socks, err := parseLsof(out, want)
		if err != nil {
			if socks != nil {
				t.Errorf("sockets %v with error %v", socks, err)
			}
			return
		}
		for _, s := range socks {
			a := s.Local.Addr()
			ok := (s.Proto == "tcp" || s.Proto == "udp") &&
				(s.Family == 4 && a.Is4() || s.Family == 6 && a.Is6()) &&
				s.Local.Port() != 0 && (want == nil || want[s.Local.Port()]) &&
				len(s.PIDs) > 0 && s.PIDs[0] > 0 && slices.IsSorted(s.PIDs) && len(slices.Compact(slices.Clone(s.PIDs))) == len(s.PIDs)
			if !ok {
				t.Errorf("bad socket %+v from %q", s, out)
			}
		}
	})
}

// fullKey is everything Holding tells of a socket.
func fullKey(s Socket) string {
	return fmt.Sprintf("%s%d %s uid=%d id=%d pids=%v", s.Proto, s.Family, s.Local, s.UID, s.Inode, s.PIDs)
}

func fullKeys(ss []Socket) []string {
	k := []string{}
	for _, s := range ss {
		k = append(k, fullKey(s))
	}
	slices.Sort(k)
	return k
}

// TestLsofHolding runs the real lsof on real sockets: a TCP listener shared
// with a child process, UDP on its port, IPv6 and dual-stack listeners, an
// accepted connection (lsof lists both ends) and a UDP socket connected to
// the port (lsof matches its remote port): lsofHolding must find the
// listeners and bound sockets with their holders, and nothing else. Its
// answer must equal Holding's: on Linux netlink and /proc, an independent
// backend, to the uid, inode and pid; on macOS Holding is lsofHolding.
func TestLsofHolding(t *testing.T) {
	lsoftest.Need(t)
	v4 := listen(t, "tcp4", "127.0.0.1:0").(*net.TCPListener)
	port := portOf(v4.Addr())
	child := startChild(t, v4)
	uc := listenUDP(t, "udp4", fmt.Sprintf("127.0.0.1:%d", port))
	dial(t, "tcp4", v4.Addr().String())
	accept(t, v4)
	dial(t, "udp4", uc.LocalAddr().String()) // lsof lists it for its remote port

	me := os.Getpid()
	both := []int{me, child.Process.Pid}
	slices.Sort(both)
	lo := func(a string) string { return fmt.Sprintf("%s:%d", a, port) }
	want := []string{
		fmt.Sprintf("tcp4 %s pids=%v", lo("127.0.0.1"), both),
		fmt.Sprintf("udp4 %s pids=%v", lo("127.0.0.1"), []int{me}),
	}
	// Asked for too: a port with nothing on it, most likely, which makes
	// lsof exit 1 though it found the others. Whatever another test
	// binds there meanwhile is left out of the comparisons.
	ports := []int{port, port%65535 + 1}
	if hasIPv6(t) {
		listen(t, "tcp6", fmt.Sprintf("[::1]:%d", port))
		listenUDP(t, "udp6", fmt.Sprintf("[::1]:%d", port))
		dual := portOf(listen(t, "tcp", "[::]:0").Addr())
		ports = append(ports, dual)
		want = append(want,
			fmt.Sprintf("tcp6 %s pids=%v", lo("[::1]"), []int{me}),
			fmt.Sprintf("udp6 %s pids=%v", lo("[::1]"), []int{me}),
			fmt.Sprintf("tcp6 [::]:%d pids=%v", dual, []int{me}))
	} else {
		t.Log("no IPv6: the ::1 and [::] sockets are not tested")
	}
	slices.Sort(want)

	mine := func(ss []Socket) []Socket {
		return slices.DeleteFunc(ss, func(s Socket) bool { return int(s.Local.Port()) == ports[1] })
	}
	got, err := lsofHolding(ports)
	if err != nil {
		t.Fatal(err)
	}
	got = mine(got)
	var short []string
	for _, s := range got {
		short = append(short, fmt.Sprintf("%s%d %s pids=%v", s.Proto, s.Family, s.Local, s.PIDs))
		if s.UID != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d, want %d", fullKey(s), s.UID, os.Getuid())
		}
	}
	slices.Sort(short)
	if !slices.Equal(short, want) {
		t.Errorf("lsofHolding(%v):\n got %q\nwant %q", ports, short, want)
	}
	native, err := Holding(ports...)
	if err != nil {
		t.Fatal(err)
	}
	native = mine(native)
	if g, n := fullKeys(got), fullKeys(native); !slices.Equal(g, n) {
		t.Errorf("lsofHolding and Holding differ:\n   lsof %q\nHolding %q", g, n)
	}
}

// TestLsofHoldingNothing: lsof exits 1 when nothing matches, which is an
// empty answer, not an error; bad ports are errors before lsof runs.
func TestLsofHoldingNothing(t *testing.T) {
	lsoftest.Need(t)
	ln := listen(t, "tcp4", "127.0.0.1:0")
	free := portOf(ln.Addr())
	ln.Close()
	if got, err := lsofHolding([]int{free}); err != nil || len(got) != 0 {
		t.Errorf("lsofHolding(%d), a closed port: %v, %v; want nothing", free, got, err)
	}
	if got, err := lsofHolding(nil); err != nil || got != nil {
		t.Errorf("lsofHolding(nil) = %v, %v", got, err)
	}
	for _, p := range []int{0, -1, 65536} {
		if _, err := lsofHolding([]int{free, p}); err == nil {
			t.Errorf("lsofHolding with port %d: no error", p)
		}
	}
}

// TestLsofHoldingManyPorts asks for more ports than one lsof argument may
// list, so lsof is asked for their whole span: the sockets on ports not
// asked for must be left out.
func TestLsofHoldingManyPorts(t *testing.T) {
	lsoftest.Need(t)
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := portOf(ln.Addr())
	ports := []int{port}
	asked := map[uint16]bool{uint16(port): true}
	for p := 1024 + port%2 + 1; p <= 65535; p += 2 { // the other parity
		ports = append(ports, p)
		asked[uint16(p)] = true
	}
	if spec := portSpec(asked); strings.Contains(spec, ",") {
		t.Fatalf("portSpec made a list, %d bytes, not the span", len(spec))
	}
	got, err := lsofHolding(ports)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range got {
		if !asked[s.Local.Port()] {
			t.Errorf("%s: port not asked for", fullKey(s))
		}
		if s.Proto == "tcp" && int(s.Local.Port()) == port {
			found = slices.Equal(s.PIDs, []int{os.Getpid()})
		}
	}
	if !found {
		t.Errorf("the listener on %d, held by this process, is not among %d sockets: %q", port, len(got), fullKeys(got))
	}
}

// BenchmarkLsofHolding is what one macOS lookup costs, measured on Linux
// with the same lsof run (BenchmarkLookup is netlink's).
func BenchmarkLsofHolding(b *testing.B) {
	lsoftest.Need(b)
	ln := listen(b, "tcp4", "127.0.0.1:0")
	port := portOf(ln.Addr())
	for b.Loop() {
		s, err := lsofHolding([]int{port})
		if err != nil || len(s) != 1 {
			b.Fatalf("lsofHolding = %v, %v", s, err)
		}
	}
}
