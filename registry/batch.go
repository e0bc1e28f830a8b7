package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

// Group commit.
//
// Every new assignment must be synced to disk (two fdatasyncs in bbolt)
// under the exclusive lock, which caps one-at-a-time assignment at a couple
// of thousand per second and makes callers queue. So a caller that finds
// the lock busy leaves its request in the pending directory
// ("<path>.pending") before it waits. Whoever holds the lock next assigns
// every pending request in one transaction, so one sync serves them all,
// and then tells each caller its port through the caller's FIFO beside the
// request. A caller waits for whichever comes first, that answer or the
// lock, so it is never stuck behind a lock that flock hands out in no
// particular order. A request whose process has died is dropped, not
// assigned; a caller that gives up (its context ends) may still find its id
// assigned later, as if it had died just after the commit.

// maxBatch bounds how many requests one transaction takes.
const maxBatch = 256

// request is one caller's ask: a port for a new stable id, or Count leased
// ports for an owner process.
type request struct {
	Kind      store.Kind
	ID        string            // Stable: the id
	Suggested int               // Stable: the suggested port; Lease: the port to start near
	Count     int               // Lease: how many ports
	Ports     PortList          // Lease: where to look (nil: anywhere suitable)
	Owner     procinfo.Identity // Stable: the asking process; Lease: the lease's owner
	Asker     procinfo.Identity // the process that queued the request
	Dir       string            // working directory of the asking process
	Command   string            // Lease: the owner's command line
	file      string            // where it was read from
}

// fifoOf is the FIFO that wakes the caller of the request in file, and
// answerOf the file its answer is kept in until the caller reads it.
func fifoOf(file string) string   { return file + ".fifo" }
func answerOf(file string) string { return file + ".ans" }

// staleAfter is how old a leftover FIFO or answer (its caller died before
// cleaning up) must be before a batch removes it.
const staleAfter = 10 * time.Minute

func (r *Registry) pendingDir() string { return r.path + ".pending" }

const requestHeader = "portfor-request 1"

// marshal writes the request as "key value" lines after a header line;
// free text is quoted.
func (q request) marshal() []byte {
	b := fmt.Appendf(nil, "%s\nkind %s\n", requestHeader, q.Kind)
	if q.Kind == store.Stable {
		b = fmt.Appendf(b, "id %s\n", q.ID)
	} else {
		b = fmt.Appendf(b, "count %d\n", q.Count)
		if len(q.Ports) > 0 {
			b = fmt.Appendf(b, "ports %s\n", q.Ports)
		}
	}
	return fmt.Appendf(b, "port %d\nowner %d %d\nasker %d %d\ndir %s\ncmd %s\n",
		q.Suggested, q.Owner.PID, q.Owner.Start, q.Asker.PID, q.Asker.Start, strconv.Quote(q.Dir), strconv.Quote(q.Command))
}

// errBadRequest marks a pending file that cannot be read as a request.
var errBadRequest = errors.New("malformed pending request")

// maxRequestSize bounds a pending request file.
const maxRequestSize = 64 << 10

// parseRequest reads what marshal wrote and validates it.
func parseRequest(b []byte) (request, error) {
	if len(b) > maxRequestSize || len(b) == 0 || b[len(b)-1] != '\n' {
		return request{}, errBadRequest
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if lines[0] != requestHeader {
		return request{}, errBadRequest
	}
	var q request
	seen := map[string]bool{}
	for _, line := range lines[1:] {
		key, val, _ := strings.Cut(line, " ")
		if seen[key] {
			return request{}, errBadRequest
		}
		seen[key] = true
		var err error
		switch key {
		case "kind":
			switch val {
			case store.Stable.String():
				q.Kind = store.Stable
			case store.Lease.String():
				q.Kind = store.Lease
			default:
				err = errBadRequest
			}
		case "id":
			q.ID = val
		case "port":
			q.Suggested, err = strconv.Atoi(val)
		case "count":
			q.Count, err = strconv.Atoi(val)
		case "ports":
			q.Ports, err = ParsePorts(val)
		case "owner":
			q.Owner, err = parseIdentity(val)
		case "asker":
			q.Asker, err = parseIdentity(val)
		case "dir":
			q.Dir, err = strconv.Unquote(val)
		case "cmd":
			q.Command, err = strconv.Unquote(val)
		default:
			err = errBadRequest
		}
		if err != nil {
			return request{}, errBadRequest
		}
	}
	switch {
	case !seen["kind"] || !seen["owner"] || !seen["asker"] || !seen["port"] || q.Owner.PID <= 0 || q.Asker.PID <= 0:
		return request{}, errBadRequest
	case q.Suggested < 0 || q.Suggested > 65535:
		return request{}, errBadRequest
	case q.Kind == store.Stable && (ValidateID(q.ID) != nil || seen["count"] || seen["ports"]):
		return request{}, errBadRequest
	case q.Kind == store.Lease && (seen["id"] || q.Count < 1 || q.Count > MaxLeaseN):
		return request{}, errBadRequest
	}
	return q, nil
}

// parseIdentity reads "PID START".
func parseIdentity(s string) (procinfo.Identity, error) {
	pid, start, ok := strings.Cut(s, " ")
	if !ok {
		return procinfo.Identity{}, errBadRequest
	}
	var id procinfo.Identity
	var err error
	if id.PID, err = strconv.Atoi(pid); err != nil {
		return procinfo.Identity{}, errBadRequest
	}
	if id.Start, err = strconv.ParseUint(start, 10, 64); err != nil {
		return procinfo.Identity{}, errBadRequest
	}
	return id, nil
}

// waiter is an enqueued request, waiting for its answer.
type waiter struct {
	file   string
	answer *answerPipe // nil where FIFOs are not available
}

// enqueue leaves q in the pending directory, with a FIFO for the answer.
// Failing to enqueue is not an error for the caller: it then assigns its
// own request when it gets the lock.
func (r *Registry) enqueue(q request) (*waiter, error) {
	dir := r.pendingDir()
	if err := r.mkdirPending(dir); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "tmp-")
	if err != nil {
		return nil, err
	}
	if r.shared {
		err = f.Chmod(r.filePerm())
	}
	if err == nil {
		_, err = f.Write(q.marshal())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	w := &waiter{file: filepath.Join(dir, "req-"+strings.TrimPrefix(filepath.Base(f.Name()), "tmp-"))}
	if err == nil {
		// The FIFO first, then the request under its final name: a batch
		// that sees the request can always answer it.
		w.answer, _ = openAnswerPipe(fifoOf(w.file), r.filePerm())
		err = os.Rename(f.Name(), w.file)
	}
	if err != nil {
		os.Remove(f.Name())
		w.close()
		return nil, err
	}
	return w, nil
}

// close removes the request and its FIFO.
func (w *waiter) close() {
	os.Remove(w.file)
	os.Remove(answerOf(w.file))
	if w.answer != nil {
		w.answer.close()
		os.Remove(fifoOf(w.file))
	}
}

// answered returns the answer a batch left for w, or nil if none did.
func (w *waiter) answered() []int {
	b, err := safefile.ReadFile(answerOf(w.file), 4096)
	if err != nil {
		return nil
	}
	return parseAnswer(string(b))
}

// pending reads the queued requests of live processes, oldest first, and
// removes those of dead processes and unreadable ones.
func (r *Registry) pending() []request {
	dir := r.pendingDir()
	if r.checkPendingDir(dir) != nil {
		return nil // not a directory we can trust: take nothing from it
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type found struct {
		q   request
		mod int64
	}
	var reqs []found
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "req-") {
			continue
		}
		if strings.Contains(name, ".") { // a FIFO or an answer: remove those whose caller died
			if base := filepath.Join(dir, name[:strings.IndexByte(name, '.')]); !exists(base) {
				if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAfter {
					os.Remove(filepath.Join(dir, name))
				}
			}
			continue
		}
		path := filepath.Join(dir, name)
		b, err := safefile.ReadFile(path, maxRequestSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue // answered and removed meanwhile
		}
		if err != nil {
			os.Remove(path) // a FIFO, a link, a huge file: not a request
			continue
		}
		q, err := parseRequest(b)
		if err == nil {
			// A request is carried out only while the process that asked
			// waits for it (and, for a lease, its owner lives).
			for _, id := range []procinfo.Identity{q.Asker, q.Owner} {
				if alive, aerr := procinfo.Alive(id); aerr == nil && !alive {
					err = procinfo.ErrNoProcess
					break
				}
			}
		}
		if err != nil {
			os.Remove(path)
			os.Remove(fifoOf(path))
			continue
		}
		q.file = path
		var mod int64
		if fi, err := e.Info(); err == nil {
			mod = fi.ModTime().UnixNano()
		}
		reqs = append(reqs, found{q, mod})
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].mod < reqs[j].mod })
	out := make([]request, 0, min(len(reqs), maxBatch))
	for i := 0; i < len(reqs) && i < maxBatch; i++ {
		out = append(out, reqs[i].q)
	}
	return out
}

// submit carries out q, together with every pending request, and returns
// q's ports. See "Group commit" above.
func (r *Registry) submit(ctx context.Context, q request) ([]int, error) {
	if err := os.MkdirAll(filepath.Dir(r.path), r.dirPerm()); err != nil {
		return nil, fmt.Errorf("open registry %s: %w", r.path, err)
	}
	if q.Dir == "" {
		q.Dir, _ = os.Getwd()
	}
	held, ok, err := r.tryLock(lock.Exclusive)
	if err != nil {
		return nil, err
	}
	if !ok {
		// From here on we wait: derive the waiting context first, so that a
		// context that acts on its first use (the CLI's signal handling)
		// is ready before anything is left behind to clean up.
		waitCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		var w *waiter
		if me, err := procinfo.Lookup(os.Getpid()); err == nil {
			q.Asker = me
			if q.Owner.PID == 0 {
				q.Owner = me
			}
			if w, err = r.enqueue(q); err == nil {
				defer w.close()
			}
		}
		var ports []int
		ports, held, err = r.awaitAnswerOrLock(waitCtx, w)
		if ports != nil || err != nil {
			return ports, err
		}
		if w != nil {
			// A batch may have carried out our request just before we got
			// the lock; otherwise take it back and carry it out ourselves.
			if ports := w.answered(); ports != nil {
				held.Unlock()
				return ports, nil
			}
			os.Remove(w.file)
		}
	}
	answers, errs, err := r.runBatch(held, []request{q})
	if err != nil {
		return nil, err
	}
	return answers[0], errs[0]
}

// runBatch carries out own (in order) and every pending request in one
// transaction under the exclusive lock held, which it releases. It answers
// the pending requests' callers and returns own's answers and errors; err
// is for failures of the whole transaction.
func (r *Registry) runBatch(held *lock.Lock, own []request) (answers [][]int, errs []error, err error) {
	// Under the lock, nobody adds to a batch we have read: read it first,
	// so the files are opened only as far as the batch needs them.
	batch := append(slices.Clone(own), r.pending()...)
	var stable, leases bool
	for _, b := range batch {
		stable = stable || b.Kind == store.Stable
		leases = leases || b.Kind == store.Lease
	}
	// A batch of leases only reads the registry file: skip opening it when
	// its ports are known for its current state.
	mode, known := mainReadWrite, map[int]bool(nil)
	if !stable {
		mode = mainReadOnly
		if known = r.mainPorts(); known != nil {
			mode = mainSkip
		}
	}
	err = r.withSessionMode(context.Background(), held, mode, leases, func(s *session) error {
		if mode == mainReadOnly {
			var err error
			if known, err = r.rememberMainPorts(s.main); err != nil {
				return err
			}
		}
		if len(own) == 1 && own[0].Kind == store.Stable {
			// Assigned already, by a batch that took our request or by
			// another caller of the same id? Then there is nothing to write.
			var port int
			err := s.main.View(func(tx *store.Tx) error {
				e, ok, err := tx.Get(own[0].ID)
				if ok {
					port = e.Port
				}
				return err
			})
			if err != nil || port != 0 {
				answers, errs = [][]int{{port}}, []error{err}
				return err
			}
		}
		var err error
		answers, errs, err = r.carryOutBatch(s, batch, len(own), stable, leases, known)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return answers[:len(own)], errs[:len(own)], nil
}

// carryOutBatch carries out batch (its first nOwn requests the caller's
// own, the rest pending) in one transaction on each file it changes, and
// answers the pending callers after the commit.
func (r *Registry) carryOutBatch(s *session, batch []request, nOwn int, stable, leases bool, known map[int]bool) (answers [][]int, errs []error, err error) {
	// Write only the files the batch changes: a commit of the registry
	// costs two disk syncs even when it changes nothing.
	t, err := s.begin(stable, leases)
	if err != nil {
		return nil, nil, err
	}
	defer t.rollback()
	answers = make([][]int, len(batch))
	errs = make([]error, len(batch))
	c := r.newChooser(t)
	c.mainPorts = known
	for i, b := range batch {
		// A failed request leaves no trace (carryOut undoes its own
		// writes), so the others are kept. A pending caller's failure
		// is left to that caller, who meets it when it gets the lock.
		answers[i], errs[i] = c.carryOut(b)
		if errs[i] != nil && !isRequestError(errs[i]) {
			return nil, nil, errs[i] // the transaction itself is broken
		}
	}
	if err := t.commit(); err != nil {
		return nil, nil, err
	}
	for i, b := range batch[nOwn:] {
		if got := answers[nOwn+i]; got != nil {
			// Committed: leave the answer, retire the request, wake the caller.
			// The request goes even if the answer cannot be written, so no
			// other batch carries it out again.
			_ = r.writeAnswer(answerOf(b.file), got)
			os.Remove(b.file)
			notify(fifoOf(b.file), got, r.shared)
		}
	}
	return answers, errs, nil
}

// isRequestError reports whether err is one request's own failure (no port
// left, a dead owner, a bad id) rather than a failure of the transaction.
func isRequestError(err error) bool {
	return errors.Is(err, ErrNoPortAvailable) || errors.Is(err, ErrNoOwner) ||
		errors.Is(err, ErrInvalidID) || errors.Is(err, ErrInvalidPort) || errors.Is(err, store.ErrPortConflict)
}

// mkdirPending makes the pending directory, or checks the one there.
func (r *Registry) mkdirPending(dir string) error {
	err := os.Mkdir(dir, r.dirPerm())
	if err == nil {
		return os.Chmod(dir, r.dirPerm()) // exactly, whatever the umask
	}
	if !errors.Is(err, os.ErrExist) {
		return err
	}
	return r.checkPendingDir(dir)
}

// checkPendingDir accepts the pending directory only if it is a real
// directory that nobody else controls: not writable by everyone, and this
// user's, or, in a shared registry, of the registry directory's group.
// Requests and answers must not go where someone else chose, nor be read
// from there.
func (r *Registry) checkPendingDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by everyone", dir)
	}
	uid, gid, ok := ownerGroupOf(fi)
	if !ok || uid == os.Geteuid() {
		return nil
	}
	if r.shared {
		if dfi, err := os.Stat(filepath.Dir(r.path)); err == nil {
			if _, rgid, ok := ownerGroupOf(dfi); ok && rgid == gid {
				return nil
			}
		}
	}
	return fmt.Errorf("%s belongs to uid %d", dir, uid)
}

// writeAnswer leaves a batch's answer for a caller: a new file, so that
// nothing someone put at its name is written through.
func (r *Registry) writeAnswer(path string, ports []int) error {
	f, err := safefile.Create(path, r.filePerm())
	if err != nil {
		return err
	}
	_, err = f.WriteString(formatAnswer(ports))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// awaitAnswerOrLock waits until a batch answers w (port != 0) or the
// exclusive lock is granted (held != nil), whichever comes first.
func (r *Registry) awaitAnswerOrLock(ctx context.Context, w *waiter) (ports []int, held *lock.Lock, err error) {
	if w == nil || w.answer == nil {
		held, err = r.lock(ctx, lock.Exclusive)
		return nil, held, err
	}
	lockCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if t := r.opts.LockTimeout; t >= 0 {
		lockCtx, cancel = context.WithTimeout(lockCtx, cmp.Or(t, DefaultLockTimeout))
		defer cancel()
	}
	type granted struct {
		l   *lock.Lock
		err error
	}
	got := make(chan granted, 1)
	go func() {
		// Poll rather than block: most waits end with an answer, and an
		// abandoned blocking wait would still take the lock for an instant.
		l, err := lock.Poll(lockCtx, r.lockPath, lock.Exclusive, 250*time.Microsecond, 4*time.Millisecond, nil)
		got <- granted{l, err}
	}()
	select {
	case p := <-w.answer.ports:
		cancel()
		if g := <-got; g.err == nil {
			g.l.Unlock() // granted in the same instant: not needed
		}
		return p, nil, nil
	case g := <-got:
		return nil, g.l, g.err
	}
}
