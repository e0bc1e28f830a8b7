package registry

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/oneline"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/sockdiag"
	"github.com/portfor/portfor/store"
)

// Holder is one socket listening (TCP) or bound (UDP) on a port, with the
// processes holding it and the name the port is registered under.
type Holder struct {
	Proto string         // "tcp" or "udp"
	Local netip.AddrPort // the local address and port the socket is bound to
	UID   uint32         // the user owning the socket (macOS: its lowest-pid holder's)
	User  string         // UID's user name, "" where it cannot be looked up
	// Procs are the processes holding the socket (a socket shared after a
	// fork has several), sorted by pid.
	Procs []Process
	// Hidden is true when no process this user may inspect holds the
	// socket: another user's (without root), or one in another pid
	// namespace. Procs is then empty and UID is all that can be told.
	// Never on macOS, where such sockets are not seen at all.
	Hidden bool
	// Name and Scope are what the port is registered under in this
	// registry ("" when it is not, or when the registry cannot be read): a
	// stable name, or for a lease its id.
	Name  string
	Scope string
}

// Process is one process holding a socket. Program, Command and Dir are
// what the process chose and may hold anything; they are "" where they
// cannot be read (the process exited, or another user's).
type Process struct {
	PID     int
	Program string // the program's name (Linux: /proc/PID/comm, at most 15 bytes; macOS: p_comm, 16)
	Command string // the command line, arguments joined by spaces
	Dir     string // the working directory
	// Elsewhere is set when the port is registered and Dir lies in the
	// directory of other names of the registry than the port's own: a
	// server started in one worktree holding the port of another's name,
	// the one a person would stop by mistake. A name's directory is its
	// scope's worktree, or else the directory it was asked from; the
	// closest one containing Dir decides. Never set for a process in
	// another mount namespace, whose Dir is a path of that namespace.
	Elsewhere *Home
}

// Home is the directory some names of a registry were asked from, or their
// scope's worktree.
type Home struct {
	Dir   string
	Scope string   // the names' scope, "" for global names
	Names []string // the names, sorted
}

// String says whose directory h is: "scope S (web, api)" for a scope's,
// "web, api" for global names', with at most three names.
func (h Home) String() string {
	names, more := h.Names, ""
	if len(names) > 3 {
		names, more = names[:3], fmt.Sprintf(" and %d more", len(h.Names)-3)
	}
	s := strings.Join(names, ", ") + more
	if h.Scope != "" {
		return "scope " + h.Scope + " (" + s + ")"
	}
	return s
}

// Who returns every socket listening (TCP) or bound (UDP) on any of ports,
// IPv4 and IPv6, of every user, with the processes holding each and the
// name each port is registered under, if any. Sockets come sorted by port,
// then protocol and address. An empty result with a nil error means
// nothing holds the ports. Sockets in other network namespaces are not
// seen. A registry that cannot be read only leaves the names out.
//
// Who is supported on Linux (netlink sock_diag and /proc) and macOS
// (lsof, sysctl); elsewhere the error wraps [errors.ErrUnsupported]. On
// macOS lsof lists only the processes this user may inspect, so without
// root the sockets of other users' processes are absent, not Hidden, and
// an answer of nothing means nothing this user can see holds the ports.
// lsof must be installed there (macOS ships it as /usr/sbin/lsof).
func (r *Registry) Who(ctx context.Context, ports ...int) ([]Holder, error) {
	for _, p := range ports {
		if err := validatePort("who", p); err != nil {
			return nil, err
		}
	}
	if len(ports) == 0 {
		return []Holder{}, nil
	}
	socks, err := holding(ctx, ports)
	if err != nil {
		return nil, fmt.Errorf("who %d: %w", ports[0], err)
	}
	return sortHolders(r.holders(ctx, socks)), nil
}

// holding is the sockets on ports, with their pids, unless ctx has ended.
func holding(ctx context.Context, ports []int) ([]sockdiag.Socket, error) {
	socks, err := sockdiag.Holding(ports...)
	if err != nil {
		return nil, err
	}
	return socks, ctx.Err()
}

// sortHolders sorts hs by port, then protocol and address, and returns it.
func sortHolders(hs []Holder) []Holder {
	slices.SortStableFunc(hs, func(a, b Holder) int {
		return cmp.Or(cmp.Compare(a.Local.Port(), b.Local.Port()), strings.Compare(a.Proto, b.Proto), a.Local.Addr().Compare(b.Local.Addr()))
	})
	return hs
}

// WhoOf is [Registry.Who] for the ports of list, naming each socket from
// list instead of reading the registry again: what `portfor list` shows.
// list is what [Registry.List] returned; the Elsewhere of a process is
// found among its stable names, so a list cut down to some of them (one
// scope's, say) flags fewer processes. Names and ports not in list are
// not looked up.
func (r *Registry) WhoOf(ctx context.Context, list []Assignment) ([]Holder, error) {
	ports := make([]int, 0, len(list))
	for _, a := range list {
		ports = append(ports, a.Port)
	}
	if len(ports) == 0 {
		return []Holder{}, nil
	}
	socks, err := holding(ctx, ports)
	if err != nil {
		return nil, fmt.Errorf("who: %w", err)
	}
	byPort, stable := named(list, nil)
	return sortHolders(describe(socks, byPort, stable)), nil
}

// holders describes socks as Who does, one Holder per socket in the same
// order.
func (r *Registry) holders(ctx context.Context, socks []sockdiag.Socket) []Holder {
	if len(socks) == 0 {
		return []Holder{}
	}
	// Best effort: who holds a port is worth telling even when the
	// registry cannot be read (another user's, or locked for too long).
	// Only the names of the sockets' ports are kept, and the stable
	// names, whose directories tell where a holder runs: a fresh
	// `portfor who` pays for every page it touches.
	want := make(map[int]bool, len(socks))
	for _, s := range socks {
		want[int(s.Local.Port())] = true
	}
	var list []Assignment
	r.each(ctx, func(e store.Entry) error {
		if e.Kind == store.Stable || want[e.Port] {
			list = append(list, fromEntry(e))
		}
		return nil
	})
	byPort, stable := named(list, want)
	return describe(socks, byPort, stable)
}

// named gives each port of list (those want holds, or all when want is
// nil) its name, and picks out the stable names, whose directories tell
// where a holder runs. Of two names on one port (a stable name and a
// lease), the first in id order is shown, as List would order them.
func named(list []Assignment, want map[int]bool) (byPort map[int]*Assignment, stable []Assignment) {
	byPort = map[int]*Assignment{}
	for i, a := range list {
		if a.Kind == Stable {
			stable = append(stable, a)
		}
		if old := byPort[a.Port]; (want == nil || want[a.Port]) && (old == nil || a.ID < old.ID) {
			byPort[a.Port] = &list[i]
		}
	}
	return byPort, stable
}

// describe makes a Holder of each socket, in the same order: its user, its
// processes, and the name byPort gives its port. stable are the stable
// names whose directories tell whether a process runs in another's.
func describe(socks []sockdiag.Socket, byPort map[int]*Assignment, stable []Assignment) []Holder {
	out := make([]Holder, 0, len(socks))
	var hs homes // made once a process needs them: they read every name's directory
	users := map[uint32]string{}
	procs := map[int]Process{}
	for _, s := range socks {
		u, ok := users[s.UID]
		if !ok {
			u = userName(s.UID)
			users[s.UID] = u
		}
		h := Holder{Proto: s.Proto, Local: s.Local, UID: s.UID, User: u}
		a := byPort[int(s.Local.Port())]
		if a != nil {
			h.Name, h.Scope = a.ID, a.Scope
		}
		for _, pid := range s.PIDs {
			p, ok := procs[pid]
			if !ok {
				p = process(pid)
				procs[pid] = p
			}
			if a != nil && a.Kind == Stable && p.Dir != "" && procinfo.SameMounts(pid) {
				if hs == nil {
					hs = homesOf(stable)
				}
				p.Elsewhere = hs.elsewhere(p.Dir, *a)
			}
			h.Procs = append(h.Procs, p)
		}
		h.Hidden = len(h.Procs) == 0
		out = append(out, h)
	}
	return out
}

// homes are the directories of a registry's stable names.
type homes map[string]*Home

// homesOf groups the stable names of list by directory.
func homesOf(list []Assignment) homes {
	hs := homes{}
	dirs := map[string]string{}
	for _, a := range list {
		if a.Kind != Stable {
			continue
		}
		d := home(a, dirs)
		if d == "" {
			continue
		}
		key := a.Scope + "\x00" + d
		h := hs[key]
		if h == nil {
			h = &Home{Dir: d, Scope: a.Scope}
			hs[key] = h
		}
		h.Names = append(h.Names, a.ID)
	}
	for _, h := range hs {
		slices.Sort(h.Names)
	}
	return hs
}

// home is the directory of a name, with its links resolved as /proc and
// lsof show a process's working directory (a name's Dir is the directory
// as os.Getwd gave it, often through a link, $PWD): for a scope made for a
// worktree, whose Dir is the worktree's administrative directory, the
// worktree itself (the directory named by the admin dir's gitdir file,
// an absolute path or, as git's worktree.useRelativePaths writes it, one
// relative to the admin dir); else Dir. dirs caches the answers.
func home(a Assignment, dirs map[string]string) string {
	if a.Dir == "" {
		return ""
	}
	key := a.Dir
	if a.Scope != "" {
		key = "\x00" + a.Dir
	}
	if d, ok := dirs[key]; ok {
		return d
	}
	d := a.Dir
	if a.Scope != "" {
		if b, err := readSmall(filepath.Join(a.Dir, "gitdir"), 4<<10); err == nil {
			g := strings.TrimSpace(string(b))
			if g != "" && !filepath.IsAbs(g) && filepath.IsAbs(a.Dir) {
				g = filepath.Join(a.Dir, g)
			}
			if filepath.IsAbs(g) && filepath.Base(g) == ".git" {
				d = filepath.Dir(g)
			}
		}
	}
	if real, err := filepath.EvalSymlinks(d); err == nil {
		d = real
	}
	dirs[key] = d
	return d
}

// elsewhere returns the closest home containing dir, when it is not the
// home of a (nor one holding a among its names); nil otherwise, and when
// no home contains dir.
func (hs homes) elsewhere(dir string, a Assignment) *Home {
	if dir == "" {
		return nil
	}
	var best *Home
	for _, h := range hs {
		if within(dir, h.Dir) && (best == nil || len(h.Dir) > len(best.Dir)) {
			best = h
		}
	}
	if best == nil || (best.Scope == a.Scope && slices.Contains(best.Names, a.ID)) {
		return nil
	}
	// Another home as deep as best holding a is as good an answer.
	for _, h := range hs {
		if h.Dir == best.Dir && h.Scope == a.Scope && slices.Contains(h.Names, a.ID) {
			return nil
		}
	}
	c := *best
	c.Names = slices.Clone(best.Names)
	return &c
}

// within reports whether dir is root or lies under it.
func within(dir, root string) bool {
	if dir == root {
		return true
	}
	if root == "/" {
		return strings.HasPrefix(dir, "/")
	}
	return strings.HasPrefix(dir, root) && len(dir) > len(root) && os.IsPathSeparator(dir[len(root)])
}

// userName looks uid up, best effort.
func userName(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return ""
	}
	return u.Username
}

// process reads what the system tells of pid, best effort.
func process(pid int) Process {
	return Process{PID: pid, Program: procinfo.Program(pid), Command: procinfo.Command(pid), Dir: procinfo.Dir(pid)}
}

// holdersPhrase says in a few words who holds the sockets hs, for an error
// message: "node (pid 4242) in /home/u/app", "a process of user postgres
// (not visible)"; two at most, then "and N more"; "" for none. What the
// processes chose (names, directories) is made one line, its control
// characters escaped (internal/oneline).
func holdersPhrase(hs []Holder) string {
	var parts []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	for _, h := range hs {
		if h.Hidden {
			who := "uid " + strconv.FormatUint(uint64(h.UID), 10)
			if h.User != "" {
				who = "user " + oneline.Clean(h.User)
			}
			add("a process of " + who + " (not visible)")
		}
		for _, p := range h.Procs {
			s := fmt.Sprintf("%s (pid %d)", cmp.Or(oneline.Clean(p.Program), "a process"), p.PID)
			if p.Dir != "" {
				s += " in " + oneline.Clean(p.Dir)
			}
			add(s) // a process holding the port on IPv4 and IPv6 once
		}
	}
	if len(parts) > 2 {
		return fmt.Sprintf("%s, %s and %d more", parts[0], parts[1], len(parts)-2)
	}
	return strings.Join(parts, " and ")
}
