// Package portserver serves portpicker's port-server protocol on a Unix
// socket, handing out leases from a portfor registry.
//
// The protocol: a client connects, sends its pid in ASCII followed by a
// newline, and reads back a port followed by a newline. On failure the
// server closes the connection without an answer, and the client falls
// back to picking a port itself. Because every port is a lease in the
// registry, the server's state survives a restart and agrees with
// `portfor pick` and the library run beside it.
package portserver

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portfor/portfor/internal/peercred"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/registry"
)

// Defaults.
const (
	// DefaultAddress is portpicker's default: an abstract Unix socket.
	DefaultAddress = "@unittest-portserver"
	// DefaultPool is portpicker's default static pool.
	DefaultPool = "15000-24999"
	// MaxRequest bounds a request: a pid and a newline fit in 20 bytes.
	MaxRequest = 32
	// DefaultReadTimeout bounds how long a client may take to send its pid.
	DefaultReadTimeout = 2 * time.Second
	// DefaultMaxConns bounds the connections served at once; more wait to
	// be accepted, so a flood of idle clients cannot grow the server.
	DefaultMaxConns = 256
	// DefaultMode is the permission of a socket file the server creates:
	// only its own user may ask it for ports.
	DefaultMode os.FileMode = 0o600
)

// ErrBadRequest is returned (wrapped) by ParseRequest for a request that is
// not a pid.
var ErrBadRequest = errors.New("bad request")

// ParseRequest reads a request: an ASCII decimal pid, optionally
// surrounded by white space (a trailing newline, as portpicker sends).
// Pids of 1 and below are refused: init, or a client that meant its parent.
func ParseRequest(b []byte) (int, error) {
	if len(b) > MaxRequest {
		return 0, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRequest, len(b), MaxRequest)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadRequest)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q is not a pid", ErrBadRequest, s)
		}
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid > 1<<31-1 {
		return 0, fmt.Errorf("%w: %q is not a pid", ErrBadRequest, s)
	}
	if pid <= 1 {
		return 0, fmt.Errorf("%w: pid %d", ErrBadRequest, pid)
	}
	return pid, nil
}

// Server answers port requests with leases from Registry. It is
// configuration only: Serve keeps the state of one run to itself, so one
// Server may serve several listeners at once.
type Server struct {
	Registry *registry.Registry
	// Pool restricts the ports handed out; nil means anywhere suitable.
	Pool registry.PortList
	// Log, when set, gets one line per request.
	Log io.Writer
	// ReadTimeout bounds a request's arrival; zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// MaxConns bounds the connections served at once; zero means
	// DefaultMaxConns.
	MaxConns int

	logMu sync.Mutex // one record at a time on Log, whichever run writes it
}

// serving is one run of Serve: the configuration and the channel from its
// handlers to its batcher.
type serving struct {
	*Server
	asks chan ask
	// sock is the path of the socket file served, "" for an abstract socket.
	sock string
}

// ask is one client's request on its way to the batcher.
type ask struct {
	owner procinfo.Identity
	reply chan leaseResult
}

type leaseResult struct {
	a   registry.Assignment
	err error
}

// maxBatch bounds how many requests one transaction serves.
const maxBatch = 256

// Holding the registry between batches.
const (
	// linger is how long the batcher keeps the registry held, waiting for
	// the next request, after a batch: one client asking again at once is
	// then served without taking the lock and opening the files anew.
	linger = time.Millisecond
	// maxHold bounds one hold, so that other processes get the lock (their
	// requests queued meanwhile are carried out by the held batches).
	maxHold = 10 * time.Millisecond
)

// batch leases ports for requests as they come, all the requests waiting
// at a time in one transaction: while one commit is made, the next
// requests gather, so one commit serves many clients. Between batches it
// keeps the registry held for a moment in case another request follows.
func (s *serving) batch(ctx context.Context) {
	for {
		var first ask
		select {
		case <-ctx.Done():
			return
		case first = <-s.asks:
		}
		h, err := s.Registry.Hold(ctx)
		if err != nil {
			first.reply <- leaseResult{err: err}
			continue
		}
		until := time.Now().Add(maxHold)
		next := &first
		for next != nil {
			asks := s.gather(*next)
			opts := make([]registry.LeaseOptions, len(asks))
			for i, a := range asks {
				opts[i] = registry.LeaseOptions{OwnerPID: a.owner.PID, OwnerStart: a.owner.Start, Ports: s.Pool}
			}
			leases, errs := h.LeaseEach(opts)
			for i, a := range asks {
				a.reply <- leaseResult{leases[i], errs[i]}
			}
			next = nil
			if time.Now().Before(until) {
				t := time.NewTimer(linger)
				select {
				case a := <-s.asks:
					next = &a
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
		}
		_ = h.Close()
	}
}

// gather returns first and every request already waiting, up to maxBatch.
func (s *serving) gather(first ask) []ask {
	asks := []ask{first}
	for len(asks) < maxBatch {
		select {
		case a := <-s.asks:
			asks = append(asks, a)
		default:
			return asks
		}
	}
	return asks
}

// lease asks the batcher for a lease for the process owner.
func (s *serving) lease(ctx context.Context, owner procinfo.Identity) (registry.Assignment, error) {
	reply := make(chan leaseResult, 1)
	select {
	case s.asks <- ask{owner, reply}:
	case <-ctx.Done():
		return registry.Assignment{}, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.a, r.err
	case <-ctx.Done():
		return registry.Assignment{}, ctx.Err()
	}
}

// logf writes one record to Log. What clients control (their requests,
// their processes' command lines) is quoted where it is formatted; as a
// second line of defence any character that is not printable is escaped
// here, so one record is always exactly one line.
func (s *Server) logf(format string, args ...any) {
	if s.Log == nil {
		return
	}
	msg := oneLine(fmt.Sprintf(format, args...))
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.Log, "%s %s\n", time.Now().Format(time.RFC3339), msg)
}

// oneLine escapes, Go-style, every character of msg that is not printable
// (newlines, carriage returns, terminal escapes).
func oneLine(msg string) string {
	if !strings.ContainsFunc(msg, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return msg
	}
	var b strings.Builder
	for _, r := range msg {
		if strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// Serve accepts connections on l until ctx ends or l fails, answering each
// on a goroutine of its own, and waits for those in flight before it
// returns. It closes l. A canceled ctx is a clean stop: Serve returns nil.
// Serve may be called for several listeners at once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	run := &serving{Server: s, asks: make(chan ask)}
	if ul, ok := l.(*net.UnixListener); ok {
		if name := ul.Addr().String(); !strings.HasPrefix(name, "@") {
			run.sock = name
		}
	}
	batchCtx, stopBatch := context.WithCancel(context.WithoutCancel(ctx))
	batchDone := make(chan struct{})
	go func() { defer close(batchDone); run.batch(batchCtx) }()
	defer func() { stopBatch(); <-batchDone }() // after the handlers below have finished
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	slots := make(chan struct{}, cmp.Or(s.MaxConns, DefaultMaxConns))
	for {
		select { // wait for a free slot before taking the next connection
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := l.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			run.handle(ctx, c)
		})
	}
}

// clientOf reads who a connected client is; tests replace it to play a
// platform where the kernel cannot tell.
var clientOf = peercred.Of

// handle answers one connection.
func (s *serving) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	timeout := s.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	req, err := readRequest(c)
	if err != nil {
		s.logf("refused: %v", err)
		return
	}
	pid, err := ParseRequest(req)
	if err != nil {
		s.logf("refused: %v", err)
		return
	}
	id, err := resolve(c, pid)
	if err != nil {
		if errors.Is(err, procinfo.ErrNoProcess) {
			s.logf("pid %d: refused: no such process", pid)
		} else {
			s.logf("pid %d: refused: %v", pid, err)
		}
		return
	}
	if id.PID != pid { // the client's namespace numbers it otherwise
		s.logf("pid %d: pid %d here", pid, id.PID)
		pid = id.PID
	}
	if why := s.mayAskFor(c, id); why != "" {
		s.logf("pid %d: refused: %s", pid, why)
		return
	}
	// The lease is for exactly the process checked: were the pid reused
	// before the lease is made, the start time would not match.
	a, err := s.lease(context.WithoutCancel(ctx), id)
	if errors.Is(err, registry.ErrNoOwner) {
		s.logf("pid %d: refused: no such process", pid)
		return
	}
	if err != nil {
		s.logf("pid %d: no port: %v", pid, err)
		return
	}
	// The read deadline covered the request only: leasing may have waited
	// for the registry's lock. The answer gets a deadline of its own.
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "%d\n", a.Port); err != nil {
		s.logf("pid %d: port %d not delivered (%v): releasing it", pid, a.Port, err)
		// Only if it is still this lease: if the pid died meanwhile the port
		// may already be someone else's.
		_ = s.Registry.ReleaseLease(context.WithoutCancel(ctx), a)
		return
	}
	// The command line is the client's to choose, newlines and all.
	s.logf("pid %d: port %d (%q)", pid, a.Port, a.Command)
}

// resolve returns the process a client means by pid. The client numbers
// pids in its own pid namespace: a client in a container sends its pid
// there, which on the server's side names another process or none. The
// kernel reports the client's pid in the server's numbering (SO_PEERCRED),
// so the pid sent is looked for in the client's namespace (a pid that
// cannot be found there is refused); the lease is then made, and the
// ownership checks applied, for the process found. Where the kernel cannot
// tell who the client is, the pid is taken as numbered here.
func resolve(c net.Conn, pid int) (procinfo.Identity, error) {
	p, known := clientOf(c)
	if !known {
		return procinfo.Lookup(pid)
	}
	return procinfo.LookupIn(p.PID, pid)
}

// mayAskFor returns "" when the client on c may hold a port for process
// id, or why not.
//
// A client may ask for its own processes, or, as root, for anyone's:
// otherwise one user could hold ports on behalf of another's processes.
// The kernel tells who the client is (SO_PEERCRED, LOCAL_PEERCRED); where
// it cannot (on the BSDs other than macOS, on Windows), the check fails
// closed, with one exception that needs no credentials: a server run by an
// unprivileged user on a socket file only that user may connect to (its
// own, with no group or other permissions) can have only that user (or
// root) as clients, so it serves that user's processes and no others.
func (s *serving) mayAskFor(c net.Conn, id procinfo.Identity) string {
	p, known := clientOf(c)
	if known && p.UID == 0 {
		return ""
	}
	owner, err := procinfo.Owner(id.PID)
	if err != nil {
		return fmt.Sprintf("cannot tell who owns it: %v", err)
	}
	if again, err := procinfo.Lookup(id.PID); err != nil || again != id {
		return "the process changed while it was checked"
	}
	if known {
		if p.UID == owner {
			return ""
		}
		return fmt.Sprintf("owned by uid %d, asked by uid %d (pid %d)", owner, p.UID, p.PID)
	}
	const unknown = "cannot tell who the client is"
	me := os.Geteuid()
	if me <= 0 { // root (or Windows, with no uids): it could serve anyone
		return unknown + ", and a server run by root serves only clients it can tell"
	}
	if why := privateTo(s.sock, me); why != "" {
		return unknown + ", and " + why
	}
	if owner != me {
		return fmt.Sprintf("%s, and the process is uid %d's, not this server's (uid %d)", unknown, owner, me)
	}
	return ""
}

// privateTo returns "" when sock is a socket file owned by uid that no one
// else may connect to, or why it is not.
func privateTo(sock string, uid int) string {
	if sock == "" {
		return "an abstract socket is open to every user"
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		return fmt.Sprintf("its socket: %v", err)
	}
	if o, _, ok := safefile.Owner(fi); !ok || o != uid || fi.Mode()&os.ModeSocket == 0 {
		return fmt.Sprintf("%s is not this server's socket", sock)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Sprintf("%s (mode %#o) is open to other users", sock, fi.Mode().Perm())
	}
	return ""
}

// readRequest reads up to a newline, end of input or MaxRequest+1 bytes.
func readRequest(c net.Conn) ([]byte, error) {
	r := bufio.NewReaderSize(io.LimitReader(c, MaxRequest+1), MaxRequest+1)
	var buf bytes.Buffer
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		buf.WriteByte(b)
		if b == '\n' || buf.Len() > MaxRequest {
			return buf.Bytes(), nil
		}
	}
}

// Listen opens a Unix stream socket at address: "@name" is a name in
// Linux's abstract namespace, anything else a file system path, created
// with mode (DefaultMode when zero; the directory's permissions still
// apply). A socket file left by a server that is gone is replaced; one a
// live server answers on is not. When the address is taken, the error
// names the user (and process) holding it.
//
// closeFn closes the listener and removes a socket file it made.
//
// An abstract socket has no permissions: anyone on the host may connect,
// and the server's check of each client's uid is what protects other
// users' processes. Anyone may also take the name first, so on a shared
// host a path in a directory only the intended users can write is safer.
func Listen(address string, mode os.FileMode) (l net.Listener, closeFn func() error, err error) {
	if mode == 0 {
		mode = DefaultMode
	}
	if address == "" {
		return nil, nil, errors.New("listen: empty address")
	}
	if strings.HasPrefix(address, "@") {
		if runtime.GOOS != "linux" {
			return nil, nil, fmt.Errorf("listen %s: abstract socket names (@name) exist only on Linux: give a file path", address)
		}
		l, err = net.Listen("unix", address)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, nil, fmt.Errorf("listen %s: the name is taken: %s", address, holder(address))
			}
			return nil, nil, fmt.Errorf("listen %s: %w", address, err)
		}
		return l, l.Close, nil
	}
	if fi, err := os.Lstat(address); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("listen %s: exists and is not a socket", address)
		}
		if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
			who := "a server"
			if p, ok := peercred.Of(c); ok {
				who = "a server of " + p.String()
			}
			c.Close()
			return nil, nil, fmt.Errorf("listen %s: %s is already answering there", address, who)
		}
		if err := os.Remove(address); err != nil {
			return nil, nil, fmt.Errorf("listen %s: remove stale socket: %w", address, err)
		}
	}
	ul, err := listenUnixMode(address, mode)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", address, err)
	}
	ul.SetUnlinkOnClose(true)
	if err := os.Chmod(address, mode); err != nil {
		ul.Close()
		return nil, nil, fmt.Errorf("listen %s: %w", address, err)
	}
	return ul, ul.Close, nil
}

// holder says who holds the Unix socket address, as far as can be told:
// it connects and asks the kernel who listens there.
func holder(address string) string {
	c, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		return "its holder accepts no connections, so who it is cannot be told"
	}
	defer c.Close()
	p, ok := peercred.Of(c)
	if !ok {
		return "a server whose user cannot be told is answering there"
	}
	if p.UID != os.Geteuid() {
		return p.String() + " holds it: give --address a socket path in a directory only your users can write"
	}
	return p.String() + " holds it: a port server of yours is already running"
}
