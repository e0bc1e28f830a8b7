package registry

import "github.com/portfor/portfor/store"

// Direct turns the cross-process queue off for r (see Registry.direct): the
// benchmarks compare the queue with plain lock waits in one run.
func Direct(r *Registry) { r.direct = true }

// PinHolder takes pid as Stop takes a holder of port it found with the
// socket inodes (pinned with a pidfd where Stop pins it), recording start
// as its start time, and returns the function that sends it SIGTERM as
// Stop would and says what came of it: "sent", "gone", "denied" or
// "unidentified". The pidfd is closed when the test ends.
func PinHolder(tb interface{ Cleanup(func()) }, pid int, start uint64, port int, inodes []uint64) (signal func() string) {
	t := &target{pid: pid, pidfd: -1, start: start, port: port, inodes: inodes}
	name := func(r sendResult) string {
		return [...]string{sent: "sent", gone: "gone", denied: "denied", unidentified: "unidentified"}[r]
	}
	if r := pin(t); r != sent {
		return func() string { return name(r) }
	}
	tb.Cleanup(func() { unpin(t) })
	return func() string { return name(sendSignal(t, sigTerm)) }
}

// WithoutPidfd makes Stop take the path of systems without pidfds (the
// checks, then kill(2)) until the test ends.
func WithoutPidfd(tb interface{ Cleanup(func()) }) {
	noPidfd = true
	tb.Cleanup(func() { noPidfd = false })
}

// ForgetKnownPorts empties r's cache of the ports Listen looked up, so
// that the next Listen of a known name reads the registry file.
func ForgetKnownPorts(r *Registry) {
	r.known.mu.Lock()
	r.known.gen, r.known.ports = store.Generation{}, nil
	r.known.mu.Unlock()
}
