package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portfor/portfor/internal/backoff"
	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry/internal/queue"
	"github.com/portfor/portfor/store"
)

// The one write path for new assignments and leases: submit → runBatch →
// carryOut, with the cross-process queue of registry/internal/queue feeding
// each batch the stable requests of callers that found the lock busy
// (docs/design.md, "Group commit").

// maxBatch bounds how many requests one transaction carries out, the
// caller's own included.
const maxBatch = 256

// job is one request in a batch and what became of it.
type job struct {
	q     request
	item  *queue.Item // the queued request it came from; nil for the caller's own
	ports []int
	err   error
}

// submit carries out q, together with the requests waiting in the queue,
// and returns q's ports.
//
// A request that finds the lock busy is queued, and its caller waits for
// whichever comes first: a batch of another process carries it out and
// answers, or the lock comes free (the caller then runs a batch itself);
// see queueAndWait and docs/design.md, "Group commit".
//
// The context is used while waiting only; once the lock is held the batch
// runs to its end, so that nothing is left half done. A caller whose
// context ends while queued may still find its id assigned (or, for a
// lease, ports held for its owner until the owner exits) later, exactly as
// if it had been killed just after the commit.
func (r *Registry) submit(ctx context.Context, q request) ([]int, error) {
	if err := r.mkdirAll(); err != nil {
		return nil, err
	}
	if q.Dir == "" {
		q.Dir = r.dir()
	}
	held, ok, err := r.tryLock(lock.Exclusive)
	if err != nil {
		return nil, err
	}
	if !ok {
		if r.direct {
			held, err = r.lock(ctx, lock.Exclusive)
		} else {
			var ports []int
			if ports, held, err = r.queueAndWait(ctx, &q); ports != nil {
				return ports, nil
			}
		}
		if err != nil {
			return nil, err
		}
	}
	jobs, err := r.runBatch(held, []request{q})
	if err != nil {
		return nil, err
	}
	return jobs[0].ports, jobs[0].err
}

// queueAndWait queues q and waits until a batch has carried it out (ports
// != nil) or the exclusive lock is granted (held != nil), whichever comes
// first. It tries the lock after 250 µs, then twice as long each time up to
// 4 ms, and between tries waits for its request to leave the queue: on
// Linux it is woken the moment that happens (an inotify watch on its own
// request file), elsewhere at the next try. A request that has left the
// queue has an answer beside it, read without any lock; without one (the
// holder died before writing it, or refused the request) the committed
// state says what was done, read under the shared lock.
//
// When it gets the lock itself it takes its request back first, and names
// it in q.Token: the batch it then runs looks for what an earlier holder may
// have committed for it (and died before answering), so nothing is carried
// out twice.
func (r *Registry) queueAndWait(ctx context.Context, q *request) (ports []int, held *lock.Lock, err error) {
	// Derive the waiting context before anything is left behind to clean
	// up: a context that acts on its first use (the CLI installs its signal
	// handling on the first Done) is then ready before the request exists.
	ctx, cancel := r.lockContext(ctx)
	defer cancel()
	var ticket *queue.Ticket
	if me, err := procinfo.Lookup(os.Getpid()); err == nil {
		if ticket, err = r.queue.Enqueue(me, q.marshal()); err == nil {
			defer ticket.Withdraw()
		}
	}
	if ticket == nil {
		held, err = r.lock(ctx, lock.Exclusive)
		return nil, held, err
	}
	start := time.Now()
	tries := backoff.New(250*time.Microsecond, 4*time.Millisecond)
	waiting := true // for a batch to answer; false once one took the request and left nothing
	for {
		if waiting && ticket.Done() {
			if ports := answer(ticket, *q); ports != nil {
				return ports, nil, nil
			}
			ports, err = r.lookupAfterBatch(ctx, *q, ticket)
			if ports != nil || err != nil {
				return ports, nil, timedOut(err, start)
			}
			// Refused, failed in the batch, or claimed by a holder that died
			// before its commit: carry it out alone, under its name, so a
			// later holder that takes the claim again does not repeat it.
			waiting = false
		}
		held, ok, err := r.tryLock(lock.Exclusive)
		if ok {
			ticket.Withdraw()
			q.Token = ticket.Name()
			return nil, held, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if waiting {
			ticket.Wait(ctx, tries.Next())
		} else {
			_ = tries.Wait(ctx)
		}
		if ctx.Err() != nil {
			if ticket.Withdraw() {
				// Too late to take it back: a batch has it, and what it
				// commits is the caller's. Wait a little more for that
				// rather than fail and leave it held for nobody's knowing.
				grace, cancel := context.WithTimeout(context.Background(), claimedGrace)
				ports, err := r.lookupAfterBatch(grace, *q, ticket)
				cancel()
				if err == nil && ports != nil {
					return ports, nil, nil
				}
			}
			// A last try with the ended context: free, it is granted; busy,
			// the error names the lock file and its holder.
			held, err := lock.Acquire(ctx, r.lockPath, lock.Exclusive, lock.Perm(r.filePerm()))
			if err == nil {
				q.Token = ticket.Name()
			}
			return nil, held, timedOut(err, start)
		}
	}
}

// claimedGrace is how long a caller whose time is up still waits for the
// batch that has claimed its request: a batch takes milliseconds, and the
// alternative is to fail while the batch goes on to commit for it.
const claimedGrace = 2 * time.Second

// answer returns the ports a holder answered q with, or nil.
func answer(ticket *queue.Ticket, q request) []int {
	if b, ok := ticket.Answer(); ok {
		return parseAnswer(b, q)
	}
	return nil
}

// formatAnswer and parseAnswer carry a carried-out request's ports to its
// asker: decimal ports separated by spaces. An answer that is not q's
// (the wrong number of ports, a port out of range) is ignored.
func formatAnswer(ports []int) []byte {
	var b []byte
	for i, p := range ports {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return b
}

func parseAnswer(b []byte, q request) []int {
	f := strings.Fields(string(b))
	want := 1
	if q.Kind == store.Lease {
		want = q.Count
	}
	if len(f) != want {
		return nil
	}
	ports := make([]int, len(f))
	for i, s := range f {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > portrange.MaxPort || strconv.Itoa(p) != s {
			return nil // one spelling only: no sign, no leading zero
		}
		ports[i] = p
	}
	return ports
}

// lookupAfterBatch waits in the kernel for the shared lock, which is
// granted once the batch that has q ends, and reads what it did for q: its
// answer, or else the committed state (the id's port, or the ports leased
// for the request). Nothing: nil.
func (r *Registry) lookupAfterBatch(ctx context.Context, q request, ticket *queue.Ticket) ([]int, error) {
	shared, err := lock.Acquire(ctx, r.lockPath, lock.Shared, lock.Perm(r.filePerm()))
	if err != nil {
		return nil, err
	}
	defer shared.Unlock()
	if ports := answer(ticket, q); ports != nil {
		return ports, nil
	}
	token := ticket.Name()
	path := r.path
	if q.Kind == store.Lease {
		path, _ = r.leaseFile()
	}
	var ports []int
	err = withStore(path, store.Options{ReadOnly: true}, func(db *store.DB) error {
		return db.View(func(tx *store.Tx) error {
			if q.Kind == store.Stable {
				e, ok, err := tx.Get(q.ID)
				if ok {
					ports = []int{e.Port}
				}
				return err
			}
			return tx.ForEach(func(e store.Entry) error {
				if e.Request == token {
					ports = append(ports, e.Port)
				}
				return nil
			})
		})
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return ports, err
}

// timedOut makes a lock timeout say what the caller waited for (the
// exclusive lock) and how long, since start.
func timedOut(err error, start time.Time) error {
	if te := (*lock.TimeoutError)(nil); errors.As(err, &te) {
		te.Mode, te.Waited = lock.Exclusive, time.Since(start)
	}
	return err
}

// queuedJobs takes up to n requests from the queue as jobs. A payload that
// is not a valid request is retired at once: its asker, finding nothing,
// carries its request out itself.
func (r *Registry) queuedJobs(n int) []job {
	if r.direct || n <= 0 {
		return nil
	}
	items, err := r.queue.Drain(n)
	if err != nil {
		return nil // a queue we cannot use: its askers carry out their own
	}
	jobs := make([]job, 0, len(items))
	for i := range items {
		q, err := parseRequest(items[i].Payload)
		if err == nil && q.Kind == store.Lease && !alive(q.Owner) {
			err = ErrNoOwner // a lease is made only for an owner that runs
		}
		if err != nil {
			r.queue.Retire(items[i])
			continue
		}
		q.Token = items[i].Name.String()
		jobs = append(jobs, job{q: q, item: &items[i]})
	}
	return jobs
}

// ownJobs makes jobs of the caller's own requests, followed by the queued
// ones the batch has room for.
func (r *Registry) ownJobs(own []request) []job {
	jobs := make([]job, len(own))
	for i, q := range own {
		jobs[i].q = q
	}
	return append(jobs, r.queuedJobs(maxBatch-len(own))...)
}

// runBatch carries out own (in order) and the queued requests in one
// session on the exclusive lock held, which it releases, and returns own's
// jobs. The error is for failures of the whole session.
func (r *Registry) runBatch(held *lock.Lock, own []request) ([]job, error) {
	// Under the lock nobody adds to what we have drained: drain first, so
	// the files are opened only as far as the batch needs them.
	jobs := r.ownJobs(own)
	stable, leases := kinds(jobs)
	p := plan{main: mainReadWrite, leases: leases}
	var stablePorts map[int]bool
	if !stable {
		// A batch of leases only reads the registry file: skip opening it
		// when its ports are known for its current state.
		p.main = mainReadOnly
		if stablePorts = r.stablePorts(); stablePorts != nil {
			p.main = mainSkip
		}
	}
	err := r.withSession(context.Background(), held, p, func(s *session) error {
		if p.main == mainReadOnly {
			var err error
			if stablePorts, err = r.readStablePorts(s.main); err != nil {
				return err
			}
		}
		return r.carryOut(s, jobs, stablePorts)
	})
	if err != nil {
		return nil, err
	}
	return jobs[:len(own)], nil
}

// kinds reports whether jobs hold stable requests, leases, or both.
func kinds(jobs []job) (stable, leases bool) {
	for _, j := range jobs {
		stable = stable || j.q.Kind == store.Stable
		leases = leases || j.q.Kind == store.Lease
	}
	return stable, leases
}

// carryOut carries out jobs in one transaction on each file s holds, and
// once that has committed retires the queued ones. A job that fails is
// taken out and the others carried out again without it, as bbolt's
// DB.Batch does with trySolo: the failure of one request never decides the
// fate of the others, and no list says which errors are a request's own.
// A caller's own failed job is then carried out alone, so the error it gets
// is its own; a queued one is retired unanswered and its asker, finding its
// id unassigned, carries it out alone. carryOut returns an error only when
// the transaction itself cannot begin or commit; the queued requests then
// stay queued. stablePorts stands in for the registry file when it is not
// open.
func (r *Registry) carryOut(s *session, jobs []job, stablePorts map[int]bool) error {
	stable, leases := kinds(jobs)
	done, err := r.leasedFor(s, jobs)
	if err != nil {
		return err
	}
	var active []int
	for i := range jobs {
		if ports, ok := done[jobs[i].q.Token]; ok && jobs[i].q.Token != "" {
			jobs[i].ports = ports // carried out by a holder that died before it answered
			continue
		}
		active = append(active, i)
	}
	var failed []int
	for len(active) > 0 {
		t, err := s.begin(stable, leases)
		if err != nil {
			return err
		}
		c := r.newChooser(t, stablePorts)
		bad := -1
		for _, i := range active {
			if jobs[i].ports, jobs[i].err = c.carryOut(jobs[i].q); jobs[i].err != nil {
				bad = i
				break
			}
		}
		if bad < 0 {
			if err := t.commit(); err != nil {
				return err
			}
			break
		}
		t.rollback()
		failed = append(failed, bad)
		active = slices.DeleteFunc(active, func(i int) bool { return i == bad })
	}
	var retire []queue.Item
	var answers [][]byte
	for i := range jobs {
		if jobs[i].item != nil {
			retire = append(retire, *jobs[i].item)
			var answer []byte
			if jobs[i].err == nil && len(jobs[i].ports) > 0 {
				answer = formatAnswer(jobs[i].ports)
			}
			answers = append(answers, answer)
		}
	}
	r.queue.Answer(retire, answers)
	for _, i := range failed {
		if jobs[i].item != nil || len(jobs) == 1 {
			continue // queued: its asker runs it alone; alone already
		}
		if err := r.carryOutAlone(s, &jobs[i], stablePorts); err != nil {
			return err
		}
	}
	return nil
}

// leasedFor returns, for the queued lease requests among jobs, the ports
// already leased for each (by its token): a holder that committed them
// and died before it retired the request leaves the request queued, and
// carrying it out again would hold a second set of ports for one ask.
func (r *Registry) leasedFor(s *session, jobs []job) (map[string][]int, error) {
	tokens := map[string]bool{}
	for _, j := range jobs {
		if j.q.Kind == store.Lease && j.q.Token != "" {
			tokens[j.q.Token] = true
		}
	}
	if len(tokens) == 0 || s.leases == nil {
		return nil, nil
	}
	done := map[string][]int{}
	err := s.leases.View(func(tx *store.Tx) error {
		return tx.ForEach(func(e store.Entry) error {
			if tokens[e.Request] {
				done[e.Request] = append(done[e.Request], e.Port)
			}
			return nil
		})
	})
	return done, err
}

// carryOutAlone carries out one job in a transaction of its own.
func (r *Registry) carryOutAlone(s *session, j *job, stablePorts map[int]bool) error {
	t, err := s.begin(j.q.Kind == store.Stable, j.q.Kind == store.Lease)
	if err != nil {
		return err
	}
	if j.ports, j.err = r.newChooser(t, stablePorts).carryOut(j.q); j.err != nil {
		t.rollback()
		return nil
	}
	return t.commit()
}

// lockContext bounds ctx by the lock timeout ([Options.LockTimeout]).
func (r *Registry) lockContext(ctx context.Context) (context.Context, context.CancelFunc) {
	switch t := r.opts.LockTimeout; {
	case t < 0:
		return context.WithCancel(ctx)
	case t == 0:
		return context.WithTimeout(ctx, DefaultLockTimeout)
	default:
		return context.WithTimeout(ctx, t)
	}
}

// errNotOpen is returned by the methods of a Registry that Open did not make.
var errNotOpen = fmt.Errorf("registry not opened: use registry.Open")
