package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/portfor/portfor/internal/backoff"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/sockdiag"
)

// ErrStillHeld is returned (wrapped) by [Registry.Stop] when something
// still holds the port once it is done; the [StopResult] says what.
var ErrStillHeld = errors.New("still held")

// StopOptions tune [Registry.Stop].
type StopOptions struct {
	// Wait is how long to wait, after SIGTERM, for the processes signalled
	// to let go of the port. 0: look once, right away.
	Wait time.Duration
	// Kill sends SIGKILL to the processes signalled that still hold the
	// port after Wait, then waits up to [StopKillWait] for them to let go.
	Kill bool
}

// StopKillWait bounds the wait after SIGKILL: a killed process lets go of
// its sockets as it exits, which takes a moment for a large one.
const StopKillWait = 3 * time.Second

// StopResult is what [Registry.Stop] did, process by process.
type StopResult struct {
	Port int
	// Terminated are the processes sent SIGTERM, by pid, as they were when
	// found.
	Terminated []Process
	// Killed are those of Terminated that still held the port after Wait
	// and were sent SIGKILL (StopOptions.Kill).
	Killed []Process
	// LeftAlone are the holders of the port sent no signal, and why.
	LeftAlone []Spared
	// Held are the sockets on the port when Stop returned, as [Registry.Who]
	// gives them; empty when the port is free. When ctx ended during the
	// wait, they are those of the last look at the port.
	Held []Holder
}

// Spared is a holder of the port that [Registry.Stop] sent no signal to.
type Spared struct {
	Proto string         // "tcp" or "udp": a socket the process holds on the port
	Local netip.AddrPort // that socket's local address
	// Process is the process left alone, as it was when found; its PID is
	// 0 when no process holding the socket could be seen (ReasonHidden).
	Process Process
	// UID and User are the process's owner where Stop could read it, else
	// the socket's. User is "" where it cannot be looked up.
	UID  uint32
	User string
	// Reason says why it was left alone.
	Reason StopReason
}

// StopReason says why [Registry.Stop] left a holder of the port alone.
type StopReason string

const (
	// ReasonNotYours: another user's process, and the caller is not root.
	ReasonNotYours StopReason = "not-yours"
	// ReasonHidden: no process holding the socket can be seen (another
	// user's, without root; one in a pid namespace out of sight).
	ReasonHidden StopReason = "hidden"
	// ReasonCaller: the calling process itself or one of its ancestors (the
	// shell or server that ran it), which it will not stop under itself.
	ReasonCaller StopReason = "caller"
	// ReasonInit: pid 1, the init process, which holds the sockets of
	// systemd's socket units (stopped with systemctl, not a signal).
	ReasonInit StopReason = "init"
	// ReasonUnidentified: the process cannot be told apart from another
	// for certain (its pid is numbered in another pid namespace than
	// /proc's), so it is not signalled.
	ReasonUnidentified StopReason = "unidentified"
	// ReasonDenied: the system refused the signal (EPERM).
	ReasonDenied StopReason = "denied"
)

// Stop stops the processes holding port: every process with a socket
// listening (TCP) or bound (UDP) on it, IPv4 and IPv6, is sent SIGTERM,
// and Stop waits up to opts.Wait for them to let go of the port; with
// opts.Kill, those still holding it are then sent SIGKILL. Only the
// caller's own processes are signalled, unless it runs as root (euid 0),
// and never the caller itself, its ancestors or pid 1 (init): the holders
// left alone are listed in LeftAlone with the reason.
//
// A process is signalled only if, at that moment, it is still the process
// found (pid and start time, as for leases) and still has a descriptor on
// one of the port's sockets. On Linux each process is pinned with a pidfd
// (pidfd_open) when it is found, checked through /proc, and signalled
// through the pidfd (pidfd_send_signal): a process that took its pid
// meanwhile never gets the signal, even one started within the same clock
// tick, whose start time is the same. Without pidfds (Linux before 5.3, a
// seccomp filter that refuses them, other Unix systems) the checks are
// followed by kill(2), which leaves two windows: the process could exit
// and its pid go to another between the check and the kill (microseconds),
// and a process that took the pid within the clock tick (10 ms) the holder
// started in and holds the port's socket too passes for it.
//
// The result says what was done even when the error is not nil. The error
// wraps [ErrStillHeld] when something still holds the port at the end (a
// process left alone, one that ignored SIGTERM without opts.Kill, or one
// that took the port since Stop looked, which is not signalled); nothing
// holding the port at all is no error, and Stop then returns at once. When
// ctx ends first, Stop returns its error.
//
// Stop is supported where [Registry.Who] is, on Unix systems; elsewhere
// the error wraps [errors.ErrUnsupported].
func (r *Registry) Stop(ctx context.Context, port int, opts StopOptions) (StopResult, error) {
	res := StopResult{Port: port, Held: []Holder{}}
	if err := validatePort("stop", port); err != nil {
		return res, err
	}
	if !canSignal {
		return res, fmt.Errorf("stop %d: signalling processes on %s: %w", port, runtime.GOOS, errors.ErrUnsupported)
	}
	socks, err := sockdiag.Holding(port)
	if err != nil {
		return res, fmt.Errorf("stop %d: %w", port, err)
	}
	if len(socks) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	targets := r.stopTargets(ctx, port, socks, &res)
	defer func() {
		for _, t := range targets {
			unpin(t)
		}
	}()
	// Reading the port's name may have waited for the registry's lock:
	// an interruption meanwhile comes before any signal.
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// SIGTERM, then the wait.
	var termed []*target
	for _, t := range targets {
		if signalled(t, sigTerm, &res) {
			res.Terminated = append(res.Terminated, t.proc)
			termed = append(termed, t)
		}
	}
	if len(termed) > 0 {
		socks, err = released(ctx, port, termed, opts.Wait)
		if opts.Kill && err == nil {
			var killed []*target
			for _, t := range termed {
				if heldBy(socks, t) && signalled(t, sigKill, &res) {
					res.Killed = append(res.Killed, t.proc)
					killed = append(killed, t)
				}
			}
			if len(killed) > 0 {
				socks, err = released(ctx, port, killed, StopKillWait)
			}
		}
		if err != nil {
			// Interrupted: what held the port when last seen, so
			// that no process signalled is taken for stopped.
			res.Held = sortHolders(r.holders(ctx, socks))
			return res, err
		}
	} else if socks, err = sockdiag.Holding(port); err != nil {
		// Nothing was signalled: the sockets as first found may have
		// been let go of since (a holder that exited or closed its
		// socket before its signal), so look again.
		return res, fmt.Errorf("stop %d: %w", port, err)
	}
	res.Held = sortHolders(r.holders(ctx, socks))
	if len(res.Held) > 0 {
		return res, fmt.Errorf("stop %d: %w", port, ErrStillHeld)
	}
	return res, nil
}

// target is a process Stop may signal: one holding sockets on the port.
type target struct {
	pid    int      // as /proc numbers it
	pidfd  int      // the process pinned (Linux), or -1
	start  uint64   // its start time when found (procinfo.Identity.Start)
	port   int      // the port
	inodes []uint64 // the port's sockets it held when found
	proc   Process
	sock   Holder // the first socket it held
}

// stopTargets sorts the processes holding socks into those Stop may signal
// (returned, by pid) and those it leaves alone (added to res.LeftAlone).
// Processes that exited meanwhile are dropped.
func (r *Registry) stopTargets(ctx context.Context, port int, socks []sockdiag.Socket, res *StopResult) []*target {
	hs := r.holders(ctx, socks)
	byPID := map[int]*target{}
	var all []*target
	for i, h := range hs {
		if h.Hidden {
			res.LeftAlone = append(res.LeftAlone, Spared{Proto: h.Proto, Local: h.Local, UID: h.UID, User: h.User, Reason: ReasonHidden})
			continue
		}
		for _, p := range h.Procs {
			if t := byPID[p.PID]; t != nil {
				t.inodes = append(t.inodes, socks[i].Inode)
				continue
			}
			t := &target{pid: p.PID, pidfd: -1, port: port, inodes: []uint64{socks[i].Inode}, proc: p, sock: h}
			byPID[p.PID] = t
			all = append(all, t)
		}
	}
	slices.SortFunc(all, func(a, b *target) int { return a.pid - b.pid })

	callers := callerPIDs()
	euid := os.Geteuid()
	var out []*target
	for _, t := range all {
		// Pinned first, so that what is read next is of the process a
		// signal would reach.
		if r := pin(t); r != sent {
			if r == unidentified {
				res.LeftAlone = append(res.LeftAlone, t.spared(ReasonUnidentified))
			}
			continue
		}
		owner, err := procinfo.Owner(t.pid)
		id, lerr := procinfo.Lookup(t.pid)
		var reason StopReason
		switch {
		case errors.Is(err, procinfo.ErrNoProcess) || errors.Is(lerr, procinfo.ErrNoProcess):
			unpin(t) // it exited
			continue
		case err != nil || lerr != nil || id.PID != t.pid:
			reason = ReasonUnidentified
		case t.pid == 1:
			reason = ReasonInit
		case callers[t.pid]:
			reason = ReasonCaller
		case euid != 0 && owner != euid:
			reason = ReasonNotYours
		default:
			t.start = id.Start
			out = append(out, t)
			continue
		}
		unpin(t)
		sp := t.spared(reason)
		if err == nil && uint32(owner) != sp.UID {
			sp.UID, sp.User = uint32(owner), userName(uint32(owner))
		}
		res.LeftAlone = append(res.LeftAlone, sp)
	}
	return out
}

// spared is t left alone for reason; the owner is the socket's.
func (t *target) spared(reason StopReason) Spared {
	return Spared{Proto: t.sock.Proto, Local: t.sock.Local, Process: t.proc, UID: t.sock.UID, User: t.sock.User, Reason: reason}
}

// callerPIDs returns this process and its ancestors, as /proc numbers them.
func callerPIDs() map[int]bool {
	pids := map[int]bool{os.Getpid(): true}
	pid := os.Getpid()
	if id, err := procinfo.Lookup(pid); err == nil {
		pid = id.PID
	}
	for i := 0; i < 64 && pid > 1; i++ { // bounded: a pid chain is short
		pids[pid] = true
		p, err := procinfo.Parent(pid)
		if err != nil {
			break
		}
		pid = p
	}
	return pids
}

// stopSignal is a signal Stop sends.
type stopSignal int

const (
	sigTerm stopSignal = iota
	sigKill
)

// sendResult is what came of sending a signal to a target.
type sendResult int

const (
	sent         sendResult = iota
	gone                    // not the process found any more, or it no longer holds the port
	denied                  // EPERM
	unidentified            // cannot be told apart from another process
)

// noPidfd makes Linux take the path of systems without pidfds (kill(2)
// after the checks); the tests set it to try that path.
var noPidfd bool

// signalled sends sig to t (see sendSignal) and reports whether it was
// sent; a refusal is noted in res.LeftAlone.
func signalled(t *target, sig stopSignal, res *StopResult) bool {
	switch sendSignal(t, sig) {
	case sent:
		return true
	case denied:
		res.LeftAlone = append(res.LeftAlone, t.spared(ReasonDenied))
	case unidentified:
		res.LeftAlone = append(res.LeftAlone, t.spared(ReasonUnidentified))
	}
	return false
}

// check reports whether t is still the process found, holding one of its
// sockets: sent when it is.
func check(t *target) sendResult {
	id, err := procinfo.Lookup(t.pid)
	switch {
	case errors.Is(err, procinfo.ErrNoProcess):
		return gone
	case err != nil || id.PID != t.pid:
		return unidentified
	case id.Start != t.start || !holds(t):
		return gone
	}
	return sent
}

// Polling bounds for Stop's waits: a scan of /proc for the holders costs a
// few milliseconds, so the waits between scans grow faster and further
// than those of a connect.
const (
	stopPollFirst = 2 * time.Millisecond
	stopPollMax   = 50 * time.Millisecond
)

// released waits up to d, polling, until ts have let go of the port, and
// returns the sockets on the port at the end. It returns ctx's error if ctx
// ends first.
//
// A socket counts as let go once none of ts holds it: it is closed, or held
// only by processes not among ts (one left alone, or one a process of ts
// handed it to), whose presence must not cut short the wait of those that
// were signalled. The socket of a process that has just exited can outlive
// its descriptors for a moment, held by no process in sight: one of ts's
// counts as still theirs.
func released(ctx context.Context, port int, ts []*target, d time.Duration) ([]sockdiag.Socket, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	pids := map[int]bool{}
	inodes := map[uint64]bool{}
	for _, t := range ts {
		pids[t.pid] = true
		for _, ino := range t.inodes {
			inodes[ino] = true
		}
	}
	theirs := func(s sockdiag.Socket) bool {
		if len(s.PIDs) == 0 {
			return inodes[s.Inode]
		}
		return slices.ContainsFunc(s.PIDs, func(pid int) bool { return pids[pid] })
	}
	pause := backoff.New(stopPollFirst, stopPollMax)
	for {
		socks, err := sockdiag.Holding(port)
		if err != nil {
			return nil, fmt.Errorf("stop %d: %w", port, err)
		}
		if err := ctx.Err(); err != nil {
			return socks, err
		}
		if !slices.ContainsFunc(socks, theirs) || wctx.Err() != nil {
			return socks, nil
		}
		_ = pause.Wait(wctx)
	}
}

// heldBy reports whether t is among the holders of socks.
func heldBy(socks []sockdiag.Socket, t *target) bool {
	return slices.ContainsFunc(socks, func(s sockdiag.Socket) bool { return slices.Contains(s.PIDs, t.pid) })
}
