package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/registry"
)

// heldBy says in a few words what holds port (proto "tcp" or "udp") on
// this host, for a line on stderr: "node (pid 4242) in ~/src/app",
// "python3 (pid 7) in /srv and 1 more", "a process of user postgres (not
// visible)". It is "" when nothing holds the port or the system cannot
// tell (an unsupported system).
func heldBy(ctx context.Context, reg *registry.Registry, proto string, port int) string {
	hs, err := reg.Who(ctx, port)
	if err != nil || len(hs) == 0 {
		return ""
	}
	var parts []string
	seen := map[int]bool{}
	for _, h := range hs {
		if h.Proto != proto {
			continue
		}
		if h.Hidden {
			parts = append(parts, "a process of "+holderUser(h)+" (not visible)")
			continue
		}
		for _, p := range h.Procs {
			if seen[p.PID] {
				continue
			}
			seen[p.PID] = true
			s := fmt.Sprintf("%s (pid %d)", orDash(clip(p.Program)), p.PID)
			if p.Dir != "" {
				s += " in " + printable(tildeHome(p.Dir))
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	// Hidden sockets of one user repeat the same words.
	uniq := parts[:1]
	for _, p := range parts[1:] {
		if p != uniq[len(uniq)-1] {
			uniq = append(uniq, p)
		}
	}
	if len(uniq) > 2 {
		return fmt.Sprintf("%s, %s and %d more", uniq[0], uniq[1], len(uniq)-2)
	}
	return strings.Join(uniq, " and ")
}

// noteHeldBy writes "portfor: <what>: occupied by ..." on stderr when
// something on this host holds the TCP or UDP port; nothing when nothing
// does, or when the system cannot tell.
func noteHeldBy(c *cli.Context, reg *registry.Registry, proto string, port int, format string, args ...any) {
	if who := heldBy(c.Context, reg, proto, port); who != "" {
		fmt.Fprintf(c.App.ErrWriter, "portfor: %s: occupied by %s\n", fmt.Sprintf(format, args...), who)
	}
}

// holderUser names a holder's user: its name, or uid N.
func holderUser(h registry.Holder) string {
	if h.User != "" {
		return "user " + printable(h.User)
	}
	return "uid " + strconv.FormatUint(uint64(h.UID), 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tildeHome writes dir under the home directory as ~/..., as people read
// paths.
func tildeHome(dir string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return dir
	}
	if dir == home {
		return "~"
	}
	if rest, ok := strings.CutPrefix(dir, home+string(filepath.Separator)); ok {
		return "~" + string(filepath.Separator) + rest
	}
	return dir
}

// onThisHost reports whether host names this host: localhost, a loopback
// or unspecified address, or an address of one of its interfaces. Only
// then can the sockets holding a port be looked up here.
func onThisHost(host string) bool {
	if host == "" || strings.EqualFold(host, registry.Localhost) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}
