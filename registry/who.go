package registry

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/sockdiag"
)

// Holder is one socket listening (TCP) or bound (UDP) on a port, with the
// processes holding it and the name the port is registered under.
type Holder struct {
	Proto string         // "tcp" or "udp"
	Local netip.AddrPort // the local address and port the socket is bound to
	UID   uint32         // the user owning the socket
	User  string         // UID's user name, "" where it cannot be looked up
	// Procs are the processes holding the socket (a socket shared after a
	// fork has several), sorted by pid.
	Procs []Process
	// Hidden is true when no process this user may inspect holds the
	// socket: another user's (without root), or one in another pid
	// namespace. Procs is then empty and UID is all that can be told.
	Hidden bool
	// Name and Scope are what the port is registered under in this
	// registry ("" when it is not): a stable name, or for a lease its id.
	Name  string
	Scope string
}

// Process is one process holding a socket. Program, Command and Dir are
// what the process chose and may hold anything; they are "" where they
// cannot be read (the process exited, or another user's).
type Process struct {
	PID     int
	Program string // /proc/PID/comm: the program's name, at most 15 bytes
	Command string // the command line, arguments joined by spaces
	Dir     string // the working directory
}

// Who returns every socket listening (TCP) or bound (UDP) on port, IPv4
// and IPv6, of every user, with the processes holding each and the name
// the port is registered under, if any. An empty result with a nil error
// means nothing holds the port. Sockets in other network namespaces are
// not seen. It is supported on Linux only; elsewhere the error wraps
// [errors.ErrUnsupported].
func (r *Registry) Who(ctx context.Context, port int) ([]Holder, error) {
	if err := validatePort("who", port); err != nil {
		return nil, err
	}
	socks, err := sockdiag.Lookup(port)
	if err != nil {
		return nil, fmt.Errorf("who %d: %w", port, err)
	}
	if len(socks) == 0 {
		return []Holder{}, nil
	}
	inodes := make([]uint64, len(socks))
	for i, s := range socks {
		inodes[i] = s.Inode
	}
	pids, err := sockdiag.Holders(inodes)
	if err != nil {
		return nil, fmt.Errorf("who %d: %w", port, err)
	}
	var name, scope string
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	list, err := r.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("who %d: %w", port, err)
	}
	for _, a := range list {
		if a.Port == port {
			name, scope = a.ID, a.Scope
			break
		}
	}
	users := map[uint32]string{}
	procs := map[int]Process{}
	out := make([]Holder, 0, len(socks))
	for _, s := range socks {
		u, ok := users[s.UID]
		if !ok {
			u = userName(s.UID)
			users[s.UID] = u
		}
		h := Holder{Proto: s.Proto, Local: s.Local, UID: s.UID, User: u, Name: name, Scope: scope}
		for _, pid := range pids[s.Inode] {
			p, ok := procs[pid]
			if !ok {
				p = process(pid)
				procs[pid] = p
			}
			h.Procs = append(h.Procs, p)
		}
		h.Hidden = len(h.Procs) == 0
		out = append(out, h)
	}
	return out, nil
}

// userName looks uid up, best effort.
func userName(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return ""
	}
	return u.Username
}

// process reads what /proc tells of pid, best effort.
func process(pid int) Process {
	p := Process{PID: pid, Command: procinfo.Command(pid)}
	dir := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(dir + "/comm"); err == nil {
		p.Program = strings.TrimSuffix(string(b), "\n")
	}
	if d, err := os.Readlink(dir + "/cwd"); err == nil {
		p.Dir = d
	}
	return p
}
