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
	"time"

	"github.com/portfor/portfor/internal/procinfo"
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

// Server answers port requests with leases from Registry.
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

	logMu sync.Mutex
	asks  chan ask // to the batcher, while Serve runs
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
func (s *Server) batch(ctx context.Context) {
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
func (s *Server) gather(first ask) []ask {
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
func (s *Server) lease(ctx context.Context, owner procinfo.Identity) (registry.Assignment, error) {
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

func (s *Server) logf(format string, args ...any) {
	if s.Log == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.Log, "%s "+format+"\n", append([]any{time.Now().Format(time.RFC3339)}, args...)...)
}

// Serve accepts connections on l until ctx ends or l fails, answering each
// on a goroutine of its own, and waits for those in flight before it
// returns. It closes l. A canceled ctx is a clean stop: Serve returns nil.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.asks = make(chan ask)
	batchCtx, stopBatch := context.WithCancel(context.WithoutCancel(ctx))
	batchDone := make(chan struct{})
	go func() { defer close(batchDone); s.batch(batchCtx) }()
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
			s.handle(ctx, c)
		})
	}
}

// handle answers one connection.
func (s *Server) handle(ctx context.Context, c net.Conn) {
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
	id, err := procinfo.Lookup(pid)
	if err != nil {
		s.logf("pid %d: refused: no such process", pid)
		return
	}
	// A client may ask for its own processes, or, as root, for anyone's:
	// otherwise one user could hold ports on behalf of another's processes.
	// Where the OS can tell who the client is, the check fails closed.
	if peer, ok := peerOf(c); ok && peer.uid != 0 {
		owner, err := procinfo.Owner(pid)
		if err != nil || owner != peer.uid {
			s.logf("pid %d: refused: owned by uid %d, asked by uid %d (pid %d) %v", pid, owner, peer.uid, peer.pid, err)
			return
		}
		if again, err := procinfo.Lookup(pid); err != nil || again != id {
			s.logf("pid %d: refused: the process changed while it was checked", pid)
			return
		}
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
	s.logf("pid %d: port %d (%s)", pid, a.Port, a.Command)
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
// live server answers on is not. close closes the listener and removes a
// socket file it made. An abstract socket has no permissions: anyone on
// the host may connect, and the server's check of each client's uid is
// what protects other users' processes.
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
			return nil, nil, fmt.Errorf("listen %s: %w", address, err)
		}
		return l, l.Close, nil
	}
	if fi, err := os.Lstat(address); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("listen %s: exists and is not a socket", address)
		}
		if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
			c.Close()
			return nil, nil, fmt.Errorf("listen %s: a server is already answering there", address)
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

// Ask requests a port from the server at address for pid, as portpicker's
// client does: it returns the port, or an error when the server answers
// nothing usable.
func Ask(ctx context.Context, address string, pid int) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", address)
	if err != nil {
		return 0, fmt.Errorf("port server %s: %w", address, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "%d\n", pid); err != nil {
		return 0, fmt.Errorf("port server %s: %w", address, err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("port server %s: no port for pid %d", address, pid)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("port server %s: answered %q", address, strings.TrimSpace(line))
	}
	return port, nil
}
