package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/portfor/portfor/internal/netprobe"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

// Listening on a name's port (docs/design.md, "Listening on a name's
// port"): the socket is bound while the registry's lock is held, so that
// no other portfor caller can take the port between its choice and the
// bind. A known name's port is looked up and bound under the shared lock;
// a new name's is chosen, bound and committed in one batch under the
// exclusive lock, which Listen takes itself rather than queueing (a batch
// of another process could assign the port but not bind it for us).

// ListenOptions say where [Registry.Listen] and its kin bind. The zero
// value binds 127.0.0.1 on the name's port.
type ListenOptions struct {
	// Address is the IP address to bind. "" and "localhost" mean
	// 127.0.0.1, the IPv4 loopback address only (as `portfor run --listen`
	// binds). A client that resolves localhost to ::1 first reaches it
	// only when nothing listens on [::1] at that port: a known name's
	// Listen binds its address and checks no other (a new name's port is
	// chosen free on all four loopback and wildcard addresses), so a
	// stranger on [::1]:PORT is not noticed; `portfor who PORT` shows it.
	// Otherwise an IP literal, IPv6 with or without brackets and with a
	// zone where it needs one: "0.0.0.0" is every IPv4 address of the
	// host, "::" every address, IPv4 and IPv6 (dual-stack, as Go's
	// net.Listen binds it), "::1" the IPv6 loopback address. Host names
	// are refused with [ErrInvalidAddress]: a name may resolve to several
	// addresses, or to none of this host's.
	Address string
	// Suggested is the port a new name asks for, as [Registry.ForwardPort]'s
	// suggested; 0 derives one from the name. A known name keeps its port
	// whatever Suggested says. For ListenLease it is where the search
	// starts ([LeaseOptions].Near).
	Suggested int
	// Ports is where ListenLease and ListenPacketLease look for a port
	// ([LeaseOptions].Ports; nil: any suitable port). Listen and
	// ListenPacket refuse it: a name's port is its own.
	Ports PortList
}

// Listen returns a listening TCP socket on name's port, assigning the name
// a port first when it has none (as [Registry.ForwardPort] does, with
// opts.Suggested), on opts.Address (127.0.0.1 by default).
//
// The socket is bound while the registry is locked: a known name's port
// is looked up and bound under the shared lock, a new name's port is
// chosen, bound and committed under the exclusive lock. No other portfor
// caller (forward, find, pick, a lease, the port server) can take the
// port in between; another program can, before a known name is bound,
// and then the error wraps [ErrPortInUse] in a [*PortInUseError] naming
// the processes holding the port where the system shows them (see
// [Registry.Who]). A new name whose port is taken, by anyone, gets
// another: the bind is part of the choice.
//
// In a process started with sockets handed over by systemd's protocol
// (`portfor run --listen NAME... -- CMD`, or a systemd socket unit), Listen
// returns the listening stream socket named name in LISTEN_FDNAMES instead
// of binding one, without reading the registry: the socket the parent
// bound wins, on whatever address and port it has, and opts are not
// looked at (a socket unit's may even be a Unix socket). Each socket
// handed over is returned once: a second Listen of the name, in any
// goroutine, binds as if none had been handed over, and so fails with
// [ErrPortInUse] while the first listener is open. The LISTEN_*
// variables stay set and the sockets not yet taken stay open for later
// calls; all of them are made close-on-exec when the package is
// initialised, so that children do not inherit them.
//
// A LISTEN_* environment that breaks the protocol (a LISTEN_PID that is
// not a pid; or this process's, with a LISTEN_FDS that is not a count or
// LISTEN_FDNAMES not matching it: what sd_listen_fds(3) fails on) hands
// nothing over, and no descriptor is touched: Listen binds every name as
// usual, except a name LISTEN_FDNAMES lists, whose socket cannot be told
// apart from the others. That Listen fails with an error wrapping
// [ErrActivationEnv] that says what is wrong with the environment, rather
// than bind a socket beside the one the parent meant to hand over.
func (r *Registry) Listen(ctx context.Context, name string, opts ListenOptions) (net.Listener, error) {
	s, err := r.listenName(ctx, name, opts, TCP)
	if err != nil {
		return nil, err
	}
	return s.(net.Listener), nil
}

// ListenPacket is [Registry.Listen] for UDP: it returns a UDP socket bound
// on name's port (the port name holds for TCP too), or the datagram socket
// named name that was handed over (`portfor run --listen --udp`).
func (r *Registry) ListenPacket(ctx context.Context, name string, opts ListenOptions) (net.PacketConn, error) {
	s, err := r.listenName(ctx, name, opts, UDP)
	if err != nil {
		return nil, err
	}
	return s.(net.PacketConn), nil
}

// ListenLease leases a port for the calling process, as [Registry.Lease]
// does (opts.Ports and opts.Suggested say where to look), and returns a
// listening TCP socket on it, bound under the same exclusive lock as the
// lease is made. The lease ends when the listener is closed (Close
// releases it once; later calls return what the first did) or when the
// process exits, as every lease does. The listener is a wrapper: its
// Close is the lease's end, so it is not a *net.TCPListener, though it
// has that type's methods.
func (r *Registry) ListenLease(ctx context.Context, opts ListenOptions) (net.Listener, error) {
	s, err := r.listenLease(ctx, opts, TCP)
	if err != nil {
		return nil, err
	}
	return s.(net.Listener), nil
}

// ListenPacketLease is [Registry.ListenLease] for UDP: a leased port with
// a UDP socket bound on it. A leased port is free on TCP and UDP alike.
func (r *Registry) ListenPacketLease(ctx context.Context, opts ListenOptions) (net.PacketConn, error) {
	s, err := r.listenLease(ctx, opts, UDP)
	if err != nil {
		return nil, err
	}
	return s.(net.PacketConn), nil
}

// listenName is Listen and ListenPacket: a socket of proto on name's port.
func (r *Registry) listenName(ctx context.Context, name string, opts ListenOptions, proto Protocol) (io.Closer, error) {
	fail := func(err error) (io.Closer, error) { return nil, fmt.Errorf("listen %q: %w", name, err) }
	if err := r.usable(); err != nil {
		return fail(err)
	}
	if err := ValidateID(name); err != nil {
		return nil, err
	}
	if s, err := inheritedSocket(name, proto); s != nil || err != nil {
		if err != nil {
			return fail(err)
		}
		return s, nil
	}
	b, err := newBinder(ctx, opts, proto)
	if err != nil {
		return fail(err)
	}
	if opts.Ports != nil {
		return fail(errors.New("ListenOptions.Ports is for ListenLease: a name's port is its own"))
	}
	id := r.key(name)
	if opts.Suggested != 0 {
		if err := validatePort(id, opts.Suggested); err != nil {
			return fail(err)
		}
	}
	port, ran, err := r.listenKnown(id, b)
	if !ran || port == 0 && (err == nil || errors.Is(err, errNoFile)) {
		// New, or the lock is busy: the exclusive path, which looks again.
		port, err = r.listenBatch(ctx, request{Kind: store.Stable, ID: id, Suggested: opts.Suggested, Dir: r.dir(), bind: b})
	}
	if err != nil {
		return fail(r.bindFailed(ctx, b, err))
	}
	return b.sock, nil
}

// listenKnown binds id's port when id is known, under the shared lock,
// without waiting behind a writer (as ForwardPort does): ran is false when
// the lock is busy, port 0 when id is not known (or there is no registry
// yet: errNoFile). The port is looked up in r.known when the registry file
// is in the state it was read in, from the file's header alone.
func (r *Registry) listenKnown(id string, b *binder) (port int, ran bool, err error) {
	l, ok, err := r.tryLock(lock.Shared)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, true, errNoFile // not even the directory yet
	}
	if err != nil || !ok {
		return 0, err != nil, err
	}
	defer l.Unlock()
	// A name this handle looked up before is checked against the file's
	// header; another is read with pread, not opened (see peekMaybe),
	// and noted for the state Peek read it in.
	if r.known.has(id) {
		gen, err := store.ReadGeneration(r.path)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, true, errNoFile
		}
		if err != nil {
			return 0, true, err
		}
		port = r.known.get(gen, id)
	}
	if port == 0 {
		e, ok, gen, err := store.Peek(r.path, id)
		if errors.Is(err, fs.ErrNotExist) {
			err = errNoFile
		}
		if err != nil || !ok {
			return 0, true, err
		}
		port = e.Port
		r.known.put(gen, id, port)
	}
	return port, true, b.bindKnown(port)
}

// knownPorts are the ports of the names Listen looked up, for the one
// state of the registry file they were read in.
type knownPorts struct {
	mu    sync.Mutex
	gen   store.Generation
	ports map[string]int
}

// has reports whether id's port was noted, in whatever state.
func (k *knownPorts) has(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ports[id] != 0
}

// get returns id's port if it was read in state gen, else 0.
func (k *knownPorts) get(gen store.Generation, id string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.gen.Same(gen) {
		return 0
	}
	return k.ports[id]
}

// put notes id's port, read in state gen; the ports of other states go.
func (k *knownPorts) put(gen store.Generation, id string, port int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.gen.Same(gen) {
		k.gen, k.ports = gen, map[string]int{}
	}
	k.ports[id] = port
}

// listenLease is ListenLease and ListenPacketLease.
func (r *Registry) listenLease(ctx context.Context, opts ListenOptions, proto Protocol) (io.Closer, error) {
	if err := r.usable(); err != nil {
		return nil, fmt.Errorf("listen on a lease: %w", err)
	}
	q, err := leaseRequest(1, LeaseOptions{Near: opts.Suggested, Ports: opts.Ports})
	if err != nil {
		return nil, err
	}
	if q.bind, err = newBinder(ctx, opts, proto); err != nil {
		return nil, fmt.Errorf("listen on a lease: %w", err)
	}
	port, err := r.listenBatch(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listen on a lease: %w", r.bindFailed(ctx, q.bind, err))
	}
	a := r.leaseAssignments(q, []int{port})[0]
	end := &leaseEnd{sock: q.bind.sock, release: func() error { return r.ReleaseLease(context.Background(), a) }}
	if proto == UDP {
		return &leasePacketConn{UDPConn: q.bind.sock.(*net.UDPConn), end: end}, nil
	}
	return &leaseListener{TCPListener: q.bind.sock.(*net.TCPListener), end: end}, nil
}

// listenBatch carries out q, whose bind makes the socket, in a batch of
// its own under the exclusive lock, which it waits for rather than queue
// q: a batch of another process could choose the port but not bind it
// here. The batch carries out the queued requests as any holder's does.
// It returns q's port; on failure the socket is closed.
func (r *Registry) listenBatch(ctx context.Context, q request) (int, error) {
	if err := r.mkdirAll(); err != nil {
		return 0, err
	}
	held, err := r.lock(ctx, lock.Exclusive)
	if err != nil {
		return 0, err
	}
	jobs, err := r.runBatch(held, []request{q})
	if err == nil {
		err = jobs[0].err
	}
	if err != nil {
		q.bind.close()
		return 0, err
	}
	if q.bind.sock == nil || q.bind.port != jobs[0].ports[0] { // never: the bind is part of the choice
		q.bind.close()
		return 0, fmt.Errorf("port %d: assigned, but the socket is on %d", jobs[0].ports[0], q.bind.port)
	}
	return q.bind.port, nil
}

// bindFailed is the error of a Listen whose bind failed with err: for a
// port in use, a *PortInUseError naming the holders, looked up now that
// no lock is held (Who reads the registry).
func (r *Registry) bindFailed(ctx context.Context, b *binder, err error) error {
	var busy *busyError
	if !errors.As(err, &busy) {
		return err
	}
	e := &PortInUseError{Addr: HostPort{Host: b.ip.String(), Port: busy.port}, IP: b.ip, Proto: b.proto.String()}
	if hs, werr := r.Who(ctx, busy.port); werr == nil {
		for _, h := range hs {
			if h.Proto == e.Proto {
				e.Holders = append(e.Holders, h)
			}
		}
	}
	return e
}

// busyError is a bind of a known name's port refused because the port is in
// use; bindFailed makes it a *PortInUseError once the lock is let go.
type busyError struct{ port int }

func (e *busyError) Error() string { return fmt.Sprintf("port %d: in use", e.port) }

// binder makes the socket a Listen call returns, on the port the registry
// holds or is choosing for it, while the lock is held.
type binder struct {
	ctx   context.Context
	proto Protocol // TCP or UDP
	ip    netip.Addr
	sock  io.Closer // a *net.TCPListener or *net.UDPConn; nil until bound
	port  int       // sock's port
}

// newBinder checks opts.Address and returns the binder for it.
func newBinder(ctx context.Context, opts ListenOptions, proto Protocol) (*binder, error) {
	ip, err := listenIP(opts.Address)
	if err != nil {
		return nil, err
	}
	return &binder{ctx: ctx, proto: proto, ip: ip}, nil
}

// listenIP reads ListenOptions.Address.
func listenIP(s string) (netip.Addr, error) {
	if s == "" || strings.EqualFold(s, Localhost) {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	lit := s
	bracketed := strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]")
	if bracketed {
		lit = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(lit)
	if err != nil || bracketed && !ip.Is6() {
		return netip.Addr{}, &AddressError{Input: s, Reason: "want an IP address (127.0.0.1, ::1, 0.0.0.0, ::) or localhost"}
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return ip, nil
}

// network is the network net.Listen binds b's address with: IPv4 or IPv6
// only, but dual-stack for the IPv6 wildcard, as Go binds it.
func (b *binder) network() string {
	n := "tcp"
	if b.proto == UDP {
		n = "udp"
	}
	switch {
	case b.ip.Is6() && b.ip.IsUnspecified():
		return n
	case b.ip.Is4():
		return n + "4"
	}
	return n + "6"
}

// bind makes the socket on port, keeping the one it has there; a socket
// on another port is closed first. It reports false, with no error, when
// the port is in use on b's address.
func (b *binder) bind(port int) (bool, error) {
	if b.sock != nil && b.port == port {
		return true, nil
	}
	b.close()
	addr := netip.AddrPortFrom(b.ip, uint16(port)).String()
	var lc net.ListenConfig
	var s io.Closer
	var err error
	if b.proto == UDP {
		s, err = lc.ListenPacket(b.ctx, b.network(), addr)
	} else {
		s, err = lc.Listen(b.ctx, b.network(), addr)
	}
	if err != nil {
		if addrInUse(err) {
			return false, nil
		}
		return false, err
	}
	b.sock, b.port = s, port
	return true, nil
}

// bindKnown binds a known name's port: the port in use is an *busyError.
func (b *binder) bindKnown(port int) error {
	ok, err := b.bind(port)
	if err == nil && !ok {
		err = &busyError{port: port}
	}
	return err
}

// probe is the check a port the registry does not hold must pass to be
// chosen: free for protos on every server address ([CanBind]) and, for a
// Listen (b != nil), bound by b. A port b holds already (the batch is
// carried out again) passes at once: the probe would meet b's own socket.
func (b *binder) probe(port int, protos netprobe.Proto) (bool, error) {
	if b != nil && b.sock != nil && b.port == port {
		return true, nil
	}
	ok, err := netprobe.CanBind(port, protos)
	if b == nil || err != nil || !ok {
		return ok, err
	}
	return b.bind(port)
}

// close closes the socket, if any.
func (b *binder) close() {
	if b.sock != nil {
		b.sock.Close()
		b.sock, b.port = nil, 0
	}
}

// leaseEnd closes a leased socket and ends its lease, once.
type leaseEnd struct {
	once    sync.Once
	err     error
	sock    io.Closer
	release func() error
}

func (e *leaseEnd) close() error {
	e.once.Do(func() { e.err = errors.Join(e.sock.Close(), e.release()) })
	return e.err
}

// leaseListener is ListenLease's listener: its Close ends the lease.
type leaseListener struct {
	*net.TCPListener
	end *leaseEnd
}

// Close closes the listener and releases its lease, once; later calls
// return what the first returned.
func (l *leaseListener) Close() error { return l.end.close() }

// leasePacketConn is ListenPacketLease's socket: its Close ends the lease.
type leasePacketConn struct {
	*net.UDPConn
	end *leaseEnd
}

// Close closes the socket and releases its lease, once; later calls
// return what the first returned.
func (c *leasePacketConn) Close() error { return c.end.close() }
