//go:build darwin || linux

package sockdiag

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/lsof"
)

// maxPortSpec bounds the port list given to lsof, far below any system's
// limit on one argument (Linux's is 128 KiB); past it lsof is asked for the
// whole range from the lowest port to the highest, and parseLsof keeps the
// ports asked for.
const maxPortSpec = 16 << 10

// lsofHolding is [Holding] through one run of lsof (see the package doc):
// macOS's, and on Linux the tests'.
func lsofHolding(ports []int) ([]Socket, error) {
	want, err := portSet(ports)
	if err != nil || len(want) == 0 {
		return nil, err
	}
	spec := portSpec(want)
	out, err := lsof.Run(context.Background(), lsofArgs(spec)...)
	if err != nil {
		return nil, fmt.Errorf("sockdiag: %w", err)
	}
	socks, err := parseLsof(out, want)
	if err != nil {
		return nil, fmt.Errorf("sockdiag: lsof -i%s: %w", spec, err)
	}
	return socks, nil
}

// lsofArgs asks for every TCP and UDP socket on the ports in spec, in field
// output: pid, fd, uid, type, device, inode, protocol, name and TCP state.
// No -sTCP:LISTEN: lsof then drops every UDP socket too (an inclusion list
// of states keeps only sockets in those states, and UDP sockets have
// none), so parseLsof drops the TCP sockets that do not listen.
func lsofArgs(spec string) []string {
	return []string{"-n", "-P", "-w", "-Ts", "-F", "pfutdiPnT", "-iTCP:" + spec, "-iUDP:" + spec}
}

// portSpec writes ports for lsof's -i: "80,8000-8002", runs of ports as
// ranges; the whole span "lo-hi" where that list would be longer than
// maxPortSpec.
func portSpec(want map[uint16]bool) string {
	ports := make([]int, 0, len(want))
	for p := range want {
		ports = append(ports, int(p))
	}
	slices.Sort(ports)
	var b strings.Builder
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ports[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ports[j]))
		}
		i = j + 1
	}
	if b.Len() > maxPortSpec {
		return strconv.Itoa(ports[0]) + "-" + strconv.Itoa(ports[len(ports)-1])
	}
	return b.String()
}

// lsofFile is one file set of lsof's field output: the fields after an 'f'
// line, with the uid of the process set it belongs to.
type lsofFile struct {
	line           int // of the 'f' field, for errors
	pid            int
	uid            uint32
	typ, dev, ino  string
	proto, name    string
	state          string
	hasName, hasST bool
}

// parseLsof reads lsof's field output (-F, fields ended by newlines) and
// returns the TCP sockets in state LISTEN and the UDP sockets whose local
// port is in want (every port when want is nil). lsof -i also matches a
// socket's remote port; those sockets are dropped, as are files of other
// protocols. A socket held by several processes (or by several descriptors
// of one) comes once with every pid, ascending: file sets are one socket
// when they agree on protocol, local address and device, or inode where
// lsof shows no device (Linux lsof shows the inode as the device, macOS the
// socket's kernel address). Socket.Inode is that device or inode as a
// number; UID is that of the socket's lowest pid.
//
// Output that is not what lsof writes (a file set before any process, a
// pid or uid that is not a number, a TCP or UDP socket of an unknown type,
// with no name or an unreadable one, a TCP socket with no state) is an
// error, not a socket left out or a wrong one.
func parseLsof(out []byte, want map[uint16]bool) ([]Socket, error) {
	type key struct {
		proto string
		local netip.AddrPort
		dev   string
	}
	var (
		socks []Socket
		index = map[key]int{}
		pid   int
		uid   int64 = -1 // unknown
		f     *lsofFile
	)
	flush := func() error {
		if f == nil {
			return nil
		}
		s, ok, err := f.socket(want)
		if err != nil || !ok {
			return err
		}
		k := key{s.Proto, s.Local, f.id()}
		i, seen := index[k]
		if !seen {
			index[k] = len(socks)
			socks = append(socks, s)
			return nil
		}
		m := &socks[i]
		if f.pid < m.PIDs[0] {
			m.UID = f.uid
		}
		if !slices.Contains(m.PIDs, f.pid) {
			m.PIDs = append(m.PIDs, f.pid)
			slices.Sort(m.PIDs)
		}
		return nil
	}
	for n, line := range bytes.Split(out, []byte{'\n'}) {
		n++
		if len(line) == 0 {
			continue
		}
		tag, val := line[0], string(line[1:])
		var err error
		switch tag {
		case 'p':
			if err = flush(); err != nil {
				return nil, err
			}
			f = nil
			if pid, err = strconv.Atoi(val); err != nil || pid <= 0 {
				return nil, fmt.Errorf("line %d: pid %q", n, val)
			}
			uid = -1
		case 'u':
			if pid == 0 || f != nil {
				return nil, fmt.Errorf("line %d: uid outside a process set", n)
			}
			if uid, err = strconv.ParseInt(val, 10, 64); err != nil || uid < 0 || uid > 1<<32-1 {
				return nil, fmt.Errorf("line %d: uid %q", n, val)
			}
		case 'f':
			if err = flush(); err != nil {
				return nil, err
			}
			if pid == 0 || uid < 0 {
				return nil, fmt.Errorf("line %d: file set without a process set and its uid before it", n)
			}
			f = &lsofFile{line: n, pid: pid, uid: uint32(uid)}
		case 't', 'd', 'i', 'P', 'n', 'T':
			if f == nil {
				return nil, fmt.Errorf("line %d: file field %q outside a file set", n, tag)
			}
			switch tag {
			case 't':
				f.typ = val
			case 'd':
				f.dev = val
			case 'i':
				f.ino = val
			case 'P':
				f.proto = val
			case 'n':
				f.name, f.hasName = val, true
			case 'T':
				if st, ok := strings.CutPrefix(val, "ST="); ok {
					f.state, f.hasST = st, true
				}
			}
		}
		// Other fields (command, login name, offset, flags …) say nothing
		// parseLsof needs.
	}
	if err := flush(); err != nil {
		return nil, err
	}
	slices.SortFunc(socks, func(a, b Socket) int {
		return cmp.Or(strings.Compare(a.Proto, b.Proto), cmp.Compare(a.Family, b.Family),
			cmp.Compare(a.Local.Port(), b.Local.Port()), a.Local.Addr().Compare(b.Local.Addr()),
			cmp.Compare(a.Inode, b.Inode))
	})
	return socks, nil
}

// socket returns f as a Socket, with ok false when it is not one asked
// for: another protocol, a TCP socket not listening, a local port not in
// want.
func (f *lsofFile) socket(want map[uint16]bool) (s Socket, ok bool, err error) {
	switch f.proto {
	case "TCP", "UDP":
	default:
		return s, false, nil
	}
	if f.proto == "TCP" {
		if !f.hasST {
			return s, false, fmt.Errorf("line %d: TCP socket with no state", f.line)
		}
		if f.state != "LISTEN" {
			return s, false, nil
		}
	}
	switch f.typ {
	case "IPv4":
		s.Family = 4
	case "IPv6":
		s.Family = 6
	default:
		return s, false, fmt.Errorf("line %d: %s socket of type %q", f.line, f.proto, f.typ)
	}
	if !f.hasName {
		return s, false, fmt.Errorf("line %d: %s socket with no name", f.line, f.proto)
	}
	local, _, _ := strings.Cut(f.name, "->")
	s.Local, err = parseLocal(local, s.Family)
	if err != nil {
		return s, false, fmt.Errorf("line %d: name %q: %w", f.line, f.name, err)
	}
	if want != nil && !want[s.Local.Port()] {
		return s, false, nil
	}
	s.Proto = strings.ToLower(f.proto)
	s.UID = f.uid
	s.PIDs = []int{f.pid}
	id := f.id()
	if h, ok := strings.CutPrefix(id, "0x"); ok {
		s.Inode, _ = strconv.ParseUint(h, 16, 64)
	} else {
		s.Inode, _ = strconv.ParseUint(id, 10, 64)
	}
	return s, true, nil
}

// id is what tells f's socket apart: its device, else its inode.
func (f *lsofFile) id() string {
	if f.dev != "" {
		return f.dev
	}
	return f.ino
}

// parseLocal reads the local half of an lsof name: "127.0.0.1:80",
// "[::1]:80", "[fe80::1%lo0]:53" or "*:80" (the unspecified address of the
// family). lsof shows an IPv6 socket's IPv4-mapped address as IPv4; it is
// mapped back, as netlink reports it.
func parseLocal(s string, family int) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("no port")
	}
	host, ps := s[:i], s[i+1:]
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("port %q", ps)
	}
	var addr netip.Addr
	switch {
	case host == "*" && family == 4:
		addr = netip.IPv4Unspecified()
	case host == "*":
		addr = netip.IPv6Unspecified()
	case len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']':
		if addr, err = netip.ParseAddr(host[1 : len(host)-1]); err != nil || !addr.Is6() {
			return netip.AddrPort{}, fmt.Errorf("address %q", host)
		}
	default:
		if addr, err = netip.ParseAddr(host); err != nil || !addr.Is4() {
			return netip.AddrPort{}, fmt.Errorf("address %q", host)
		}
	}
	switch {
	case family == 6 && addr.Is4():
		addr = netip.AddrFrom16(addr.As16())
	case family == 4 && addr.Is4In6():
		addr = addr.Unmap()
	case family == 4 && addr.Is6():
		return netip.AddrPort{}, fmt.Errorf("IPv6 address %s on an IPv4 socket", addr)
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
