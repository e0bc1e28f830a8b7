package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portfor/portfor/internal/procinfo"
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

// request is one caller's ask for a new id.
type request struct {
	ID        string
	Suggested int
	Owner     procinfo.Identity // the asking process, to drop requests of the dead
	Dir       string            // its working directory
	file      string            // where it was read from
}

// fifo is where the answer to the request in file goes.
func fifoOf(file string) string { return file + ".fifo" }

func (r *Registry) pendingDir() string { return r.path + ".pending" }

// marshal writes the request as lines: a version, the id, the suggested
// port, the owner's pid and start time, the working directory.
func (q request) marshal() []byte {
	return fmt.Appendf(nil, "portfor-request 1\n%s\n%d\n%d %d\n%s\n", q.ID, q.Suggested, q.Owner.PID, q.Owner.Start, q.Dir)
}

// errBadRequest marks a pending file that cannot be read as a request.
var errBadRequest = errors.New("malformed pending request")

// parseRequest reads what marshal wrote and validates it.
func parseRequest(b []byte) (request, error) {
	lines := strings.SplitN(string(b), "\n", 6)
	if len(lines) < 6 || lines[0] != "portfor-request 1" || lines[5] != "" {
		return request{}, errBadRequest
	}
	q := request{ID: lines[1], Dir: lines[4]}
	if ValidateID(q.ID) != nil {
		return request{}, errBadRequest
	}
	n, err := strconv.Atoi(lines[2])
	if err != nil || n < 0 || n > 65535 {
		return request{}, errBadRequest
	}
	q.Suggested = n
	pid, start, ok := strings.Cut(lines[3], " ")
	if !ok {
		return request{}, errBadRequest
	}
	if q.Owner.PID, err = strconv.Atoi(pid); err != nil || q.Owner.PID <= 0 {
		return request{}, errBadRequest
	}
	if q.Owner.Start, err = strconv.ParseUint(start, 10, 64); err != nil {
		return request{}, errBadRequest
	}
	return q, nil
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
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "tmp-")
	if err != nil {
		return nil, err
	}
	_, err = f.Write(q.marshal())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	w := &waiter{file: filepath.Join(dir, "req-"+strings.TrimPrefix(filepath.Base(f.Name()), "tmp-"))}
	if err == nil {
		// The FIFO first, then the request under its final name: a batch
		// that sees the request can always answer it.
		w.answer, _ = openAnswerPipe(fifoOf(w.file))
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
	if w.answer != nil {
		w.answer.close()
		os.Remove(fifoOf(w.file))
	}
}

// pending reads the queued requests of live processes, oldest first, and
// removes those of dead processes and unreadable ones.
func (r *Registry) pending() []request {
	dir := r.pendingDir()
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
		if !strings.HasPrefix(name, "req-") || strings.HasSuffix(name, ".fifo") {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			continue // answered and removed meanwhile
		}
		q, err := parseRequest(b)
		if err == nil {
			var alive bool
			if alive, err = procinfo.Alive(q.Owner); err == nil && !alive {
				err = procinfo.ErrNoProcess
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

// assign gives q.ID a port, assigning every pending request with it, and
// returns q.ID's port. See "Group commit" above.
func (r *Registry) assign(ctx context.Context, q request) (int, error) {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return 0, fmt.Errorf("open registry %s: %w", r.path, err)
	}
	q.Dir, _ = os.Getwd()
	held, ok, err := lock.TryAcquire(r.lockPath, lock.Exclusive)
	if err != nil {
		return 0, err
	}
	if !ok {
		// From here on we wait: derive the waiting context first, so that a
		// context that acts on its first use (the CLI's signal handling)
		// is ready before anything is left behind to clean up.
		waitCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		var w *waiter
		if me, err := procinfo.Lookup(os.Getpid()); err == nil {
			q.Owner = me
			if w, err = r.enqueue(q); err == nil {
				defer w.close()
			}
		}
		var port int
		port, held, err = r.awaitAnswerOrLock(waitCtx, w)
		if port != 0 || err != nil {
			return port, err
		}
	}
	var port int
	err = r.withDB(ctx, held, func(db *store.DB) error {
		// Assigned already: by a batch that took our request, or by
		// another caller of the same id.
		err := db.View(func(tx *store.Tx) error {
			e, ok, err := tx.Get(q.ID)
			if ok {
				port = e.Port
			}
			return err
		})
		if err != nil || port != 0 {
			return err
		}
		batch := append([]request{q}, r.pending()...)
		answers := make([]int, len(batch))
		err = db.Update(func(tx *store.Tx) error {
			now := r.opts.Now()
			for i, b := range batch {
				if e, ok, err := tx.Get(b.ID); err != nil || ok {
					answers[i] = e.Port
					continue
				}
				p, err := r.choose(tx, b.ID, b.Suggested)
				if err == nil {
					err = tx.Put(store.Entry{ID: b.ID, Port: p, Kind: store.Stable, Created: now, Updated: now, Dir: b.Dir})
				}
				if err != nil && i == 0 {
					return err // our own failure fails the call
				}
				if err == nil {
					answers[i] = p
				}
				// Another caller's failure is left to that caller, who
				// meets it when it gets the lock.
			}
			return nil
		})
		if err != nil {
			return err
		}
		port = answers[0]
		for i, b := range batch[1:] {
			if p := answers[i+1]; p != 0 {
				notify(fifoOf(b.file), p) // committed: tell the caller
				os.Remove(b.file)
			}
		}
		return nil
	})
	return port, err
}

// awaitAnswerOrLock waits until a batch answers w (port != 0) or the
// exclusive lock is granted (held != nil), whichever comes first.
func (r *Registry) awaitAnswerOrLock(ctx context.Context, w *waiter) (port int, held *lock.Lock, err error) {
	if w == nil || w.answer == nil {
		held, err = r.lock(ctx, lock.Exclusive)
		return 0, held, err
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
		l, err := lock.Poll(lockCtx, r.lockPath, lock.Exclusive, 250*time.Microsecond, 4*time.Millisecond)
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
		return 0, g.l, g.err
	}
}
