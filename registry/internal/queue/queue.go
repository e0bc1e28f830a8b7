// Package queue is the registry's cross-process request queue: a directory
// beside the registry file ("<registry>.pending") where a caller that finds
// the registry's lock busy leaves its request, so that whoever holds the
// lock next carries it out together with its own work, in one transaction.
// docs/design.md ("Group commit") describes the protocol and why it exists.
//
// The queue carries opaque payloads: it knows nothing of what a request
// asks. It knows who asked, because the asker's identity (pid, start time,
// pid namespace) is part of every file name, so the requests and
// half-written files of a caller that died are removed by the next drain
// without being read. It writes no answers: the caller learns that its
// request has been taken from the queue (its file is gone) and reads the
// outcome where the work left it, in the registry.
//
// Every operation works relative to a descriptor of the directory, opened
// without following a link, and touches only names the queue itself makes,
// so a directory or file that another user swapped in cannot redirect a read,
// a write or a removal elsewhere. Nothing here takes the registry's lock:
// [Queue.Drain] and [Queue.Retire] are for the lock's holder, [Queue.Enqueue]
// and [Ticket] for the callers waiting for it.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/safefile"
)

// Config says where the queue lives and who may use it.
type Config struct {
	// Dir is the pending directory; it is created on first use.
	Dir string
	// FilePerm and DirPerm are the exact permissions of what the queue
	// creates: 0600 and 0700, or 0660 and 0770 for a registry shared by a
	// group.
	FilePerm, DirPerm os.FileMode
	// Group is the group that may share the directory (the registry
	// directory's group), or -1 when only the user may use it. In a shared
	// queue the directory keeps that group and its setgid bit, so every
	// member's requests can be read by every other member.
	Group int
}

// Queue is a pending directory. Its methods are safe for concurrent use.
type Queue struct {
	cfg Config
}

// New returns the queue cfg describes. It touches nothing on disk.
func New(cfg Config) *Queue { return &Queue{cfg: cfg} }

// MaxPayload bounds what one request may carry.
const MaxPayload = 16 << 10

// staleAfter is how old a file of an earlier version of the queue (whose
// names carry no asker) must be before a drain removes it: its caller has
// long given up or carried out its request itself.
const staleAfter = 10 * time.Minute

// Names. A request is "q2-TIME-PID-START-NS-RAND": TIME is the enqueue time
// in Unix nanoseconds (16 hex digits, so names sort oldest first), PID,
// START and NS identify the asker (decimal), RAND tells apart the requests
// of one asker. It is written under "t2-…" (the same fields) and renamed, so
// a request is never seen half-written. Version 1 of the queue used
// "req-*" and "tmp-*" names with ".fifo" and ".ans" files beside them.
const (
	requestPrefix = "q2-"
	partialPrefix = "t2-"
	answerPrefix  = "a2-" // what a carried-out request's holder left for its asker
	claimPrefix   = "c2-" // a request a holder has taken from the queue
)

// Name is a file name the queue makes, read back.
type Name struct {
	Partial bool // a request still being written
	Answer  bool // an answer left for the asker
	Claimed bool // a request a holder has taken
	Time    time.Time
	Asker   procinfo.Identity // with its pid namespace (0: unknown)
	rand    uint32
}

// String returns the file name.
func (n Name) String() string {
	prefix := requestPrefix
	switch {
	case n.Partial:
		prefix = partialPrefix
	case n.Answer:
		prefix = answerPrefix
	case n.Claimed:
		prefix = claimPrefix
	}
	return fmt.Sprintf("%s%016x-%d-%d-%d-%08x", prefix, n.Time.UnixNano(), n.Asker.PID, n.Asker.Start, n.Asker.NS, n.rand)
}

// errName marks a file name the queue did not make.
var errName = errors.New("not a queue file name")

// ParseName reads a name String made. Anything else, old versions'
// names included, is an error.
func ParseName(s string) (Name, error) {
	orig := s
	var n Name
	switch {
	case strings.HasPrefix(s, requestPrefix):
		s = s[len(requestPrefix):]
	case strings.HasPrefix(s, partialPrefix):
		n.Partial = true
		s = s[len(partialPrefix):]
	case strings.HasPrefix(s, answerPrefix):
		n.Answer = true
		s = s[len(answerPrefix):]
	case strings.HasPrefix(s, claimPrefix):
		n.Claimed = true
		s = s[len(claimPrefix):]
	default:
		return Name{}, errName
	}
	f := strings.Split(s, "-")
	if len(f) != 5 || len(f[0]) != 16 || len(f[4]) != 8 {
		return Name{}, errName
	}
	t, err1 := strconv.ParseUint(f[0], 16, 63)
	pid, err2 := strconv.ParseUint(f[1], 10, 31)
	start, err3 := strconv.ParseUint(f[2], 10, 64)
	ns, err4 := strconv.ParseUint(f[3], 10, 64)
	r, err5 := strconv.ParseUint(f[4], 16, 32)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil || pid == 0 {
		return Name{}, errName
	}
	n.Time = time.Unix(0, int64(t))
	n.Asker = procinfo.Identity{PID: int(pid), Start: start, NS: ns}
	n.rand = uint32(r)
	if n.String() != orig {
		return Name{}, errName // one spelling only: no leading zeros, no '+'
	}
	return n, nil
}

// oldVersion reports whether name is a file of version 1 of the queue.
func oldVersion(name string) bool {
	return strings.HasPrefix(name, "req-") || strings.HasPrefix(name, "tmp-")
}

// Ticket is a request in the queue, held by the caller that asked.
type Ticket struct {
	q     *Queue
	name  string
	watch *watch // nil where the OS cannot tell when the file goes
}

// Enqueue leaves payload in the queue on behalf of asker (the calling
// process) and returns its ticket.
func (q *Queue) Enqueue(asker procinfo.Identity, payload []byte) (*Ticket, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("enqueue: request of %d bytes, at most %d", len(payload), MaxPayload)
	}
	d, err := q.openDir(true)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	defer d.Close()
	n := Name{Partial: true, Time: time.Now(), Asker: asker, rand: rand.Uint32()}
	tmp := n.String()
	n.Partial = false
	name := n.String()
	err = d.Create(tmp, q.cfg.FilePerm, payload)
	if err == nil {
		err = d.Rename(tmp, name)
	}
	if err != nil {
		d.Remove(tmp)
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	return &Ticket{q: q, name: name, watch: newWatch(q.cfg.Dir + string(os.PathSeparator) + name)}, nil
}

// Wait waits until the request leaves the queue (where the OS can tell:
// Linux), for at most d, and not much past the end of ctx. The caller looks
// at Taken afterwards: waking up is no proof.
func (t *Ticket) Wait(ctx context.Context, d time.Duration) { t.watch.wait(ctx, d) }

// sleep waits d, or less when ctx ends first.
func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// Taken reports whether the request has left the queue: a holder claimed
// it, or retired it. Done reports whether its holder is through with it:
// it carried it out and answered, or refused it, or the request was
// withdrawn; a claimed request is taken but not done.
func (t *Ticket) Taken() bool { return !t.q.exists(t.name) }

// Done: see Taken.
func (t *Ticket) Done() bool {
	n, err := ParseName(t.name)
	if err != nil {
		return t.Taken()
	}
	n.Claimed = true
	return t.Taken() && !t.q.exists(n.String())
}

func (q *Queue) exists(name string) bool {
	_, err := os.Lstat(q.cfg.Dir + string(os.PathSeparator) + name)
	return !errors.Is(err, fs.ErrNotExist)
}

// Name returns the request's name in the queue, which a holder may record
// with what it did for it.
func (t *Ticket) Name() string { return t.name }

// Answer returns the answer the request's holder left, if any (read at most
// once; the file is removed). Call it once Taken reports true.
func (t *Ticket) Answer() ([]byte, bool) {
	n, err := ParseName(t.name)
	if err != nil {
		return nil, false
	}
	n.Answer = true
	d, err := t.q.openDir(false)
	if err != nil {
		return nil, false
	}
	defer d.Close()
	b, _, err := d.ReadFile(n.String(), MaxAnswer)
	d.Remove(n.String())
	return b, err == nil
}

// Withdraw takes the request back if no holder has taken it, and removes
// what is left of it (a claim, an answer). It reports whether a holder had
// taken it already: then the request may be carried out, or already be,
// whatever the caller does now. Call it when the caller stops waiting,
// whether or not it was answered; a second call reports true.
func (t *Ticket) Withdraw() (taken bool) {
	t.watch.close()
	t.watch = nil
	d, err := t.q.openDir(false)
	if err != nil {
		return true
	}
	defer d.Close()
	taken = d.Remove(t.name) != nil
	if n, err := ParseName(t.name); err == nil {
		n.Claimed = true
		d.Remove(n.String())
		n.Claimed, n.Answer = false, true
		d.Remove(n.String())
	}
	return taken
}

// Item is a request read by [Queue.Drain].
type Item struct {
	Name    Name
	Owner   int // uid of the file's owner: the user who queued it
	Payload []byte
	file    string
}

// Drain returns up to max queued requests of askers that are still alive,
// oldest first, and at most [MaxPerUser] of them from any one user. It removes what callers that are gone left behind:
// their requests and half-written files, and version 1 files older than
// ten minutes. A request it cannot read (another user's file this user
// may not open) is left for someone who can; a file that is not a regular
// file is removed. Call it only while holding the registry's exclusive lock,
// and Retire every item once it is carried out or refused.
func (q *Queue) Drain(max int) ([]Item, error) {
	d, names, err := q.list()
	if d == nil || err != nil {
		return nil, wrap("drain", err)
	}
	defer d.Close()
	alive := map[procinfo.Identity]bool{}
	isAlive := func(n Name, name string) bool {
		if age, ok := d.Age(name); !ok || age > AbandonAfter {
			return false // its asker has long given up waiting, or it is gone
		}
		if !sameNamespace(n.Asker) {
			return true // cheap to tell only for askers of our own namespace; the age decides for the rest
		}
		a, ok := alive[n.Asker]
		if !ok {
			a = askerAlive(n)
			alive[n.Asker] = a
		}
		return a
	}
	var items []Item
	perUser := map[int]int{}
	// Names the queue does not make cost nothing but this look: they are
	// left out before the bound, so no pile of them can hide the requests.
	ours := names[:0]
	for _, name := range names {
		if _, err := ParseName(name); err == nil || oldVersion(name) || isOldVersionSibling(name) {
			ours = append(ours, name)
		}
	}
	names = ours
	if len(names) > maxExamined {
		names = names[:maxExamined] // the rest waits for later drains: a drain's cost stays bounded
	}
	for _, name := range names {
		n, err := ParseName(name)
		if err != nil {
			if age, ok := d.Age(name); ok && age > staleAfter {
				d.Remove(name) // version 1
			}
			continue
		}
		if !isAlive(n, name) {
			d.Remove(name)
			continue
		}
		if n.Partial || n.Answer || len(items) >= max {
			continue // still looked at: what the dead left goes even then
		}
		if uid, ok := d.UID(name); ok && perUser[uid] >= MaxPerUser {
			continue // this user's share of the batch is full: not even read
		}
		b, owner, err := d.ReadFile(name, MaxPayload)
		if errors.Is(err, safefile.ErrNotRegular) {
			d.Remove(name)
			continue
		}
		if err != nil {
			continue
		}
		// Claim it: from here on its asker cannot take it back, and knows
		// that a batch has it. A claimed request found here is one whose
		// holder is gone (the lock is ours): it is taken again.
		if !n.Claimed {
			c := n
			c.Claimed = true
			if d.Rename(name, c.String()) != nil {
				continue // taken back meanwhile
			}
			name = c.String()
		}
		perUser[owner]++
		n.Claimed = false // the name its asker knows it by
		items = append(items, Item{Name: n, Owner: owner, Payload: b, file: name})
	}
	return items, nil
}

// MaxPerUser bounds how many requests of one user (the owner of the request
// files) one drain takes: a member flooding a shared queue makes each other
// member's batch carry out at most this many of its requests.
const MaxPerUser = 32

// AbandonAfter is how long a request may wait in the queue. An older one is
// removed unread, whoever its asker: a caller waits at most its lock
// timeout (10 s by default), and one that waits longer finds its request
// gone and carries it out itself, which for a stable name is always safe.
const AbandonAfter = 2 * time.Minute

// maxExamined bounds how many names one drain looks at, oldest first, so
// that a directory flooded with files costs each lock holder a bounded
// time; what is left is looked at by the drains after it.
const maxExamined = 2048

// sameNamespace reports whether asker was named in the pid namespace of this
// process's /proc (or in none known), where its liveness is one read of
// /proc/PID/stat. An asker of another namespace takes a scan of /proc to
// find, which a drain does not spend on every file.
func sameNamespace(asker procinfo.Identity) bool {
	return asker.NS == 0 || asker.NS == selfNS()
}

// selfNS is the pid namespace this process's /proc numbers pids in.
var selfNS = sync.OnceValue(func() uint64 {
	me, err := procinfo.Lookup(os.Getpid())
	if err != nil {
		return 0
	}
	return me.NS
})

// isOldVersionSibling reports whether name is a version 1 FIFO or answer.
func isOldVersionSibling(name string) bool {
	return strings.HasPrefix(name, "req-") && (strings.HasSuffix(name, ".fifo") || strings.HasSuffix(name, ".ans"))
}

// askerAlive reports whether the process that queued a request still runs.
// An asker that cannot be looked up (another pid namespace, no /proc)
// counts as alive: its request is carried out, which is what it asked for.
func askerAlive(n Name) bool {
	alive, err := procinfo.Alive(n.Asker)
	return alive || err != nil
}

// Retire removes carried-out or refused items from the queue: their askers
// see their tickets taken. Call it after the commit that carried them out.
func (q *Queue) Retire(items ...Item) { q.Answer(items, nil) }

// MaxAnswer bounds an answer.
const MaxAnswer = 512

// Answer retires items, first leaving answers[i] (when not nil) for the
// asker of items[i], so that it learns the outcome without the registry's
// lock. An answer is a new file (never one someone put there), read by
// its asker with a size limit.
func (q *Queue) Answer(items []Item, answers [][]byte) {
	if len(items) == 0 {
		return
	}
	d, err := q.openDir(false)
	if err != nil {
		return
	}
	defer d.Close()
	for i, it := range items {
		if i < len(answers) && answers[i] != nil && len(answers[i]) <= MaxAnswer {
			a := it.Name
			a.Answer = true
			_ = d.Create(a.String(), q.cfg.FilePerm, answers[i]) // without it, the asker looks the outcome up
		}
		d.Remove(it.file)
	}
}

// State says what a file in the pending directory is, for [Queue.Scan].
type State int

const (
	// Waiting is a request whose asker still runs.
	Waiting State = iota
	// Abandoned is a request or half-written file whose asker is gone: the
	// next drain removes it.
	Abandoned
	// Partial is a request its asker, still running, is writing, or an
	// answer it has yet to read.
	Partial
	// OldVersion is a file of version 1 of the queue.
	OldVersion
	// Foreign is a name the queue never makes: it is never removed.
	Foreign
)

// String names the state.
func (s State) String() string {
	return [...]string{"waiting", "abandoned", "partial", "old version", "foreign"}[s]
}

// Entry is one file of the pending directory, as [Queue.Scan] found it.
type Entry struct {
	File  string
	State State
	Name  Name          // the parsed name, for Waiting, Abandoned and Partial
	Age   time.Duration // since the file was last changed, when known
}

// Scan lists the pending directory without changing it, for a health
// check. It refuses a directory that is a link or that someone else
// controls, as every other operation does.
func (q *Queue) Scan() ([]Entry, error) {
	d, names, err := q.list()
	if d == nil || err != nil {
		return nil, wrap("scan", err)
	}
	defer d.Close()
	out := make([]Entry, 0, len(names))
	for _, name := range names {
		e := Entry{File: name, State: Foreign}
		e.Age, _ = d.Age(name)
		if n, err := ParseName(name); err == nil {
			e.Name = n
			switch {
			case e.Age > AbandonAfter || (sameNamespace(n.Asker) && !askerAlive(n)):
				e.State = Abandoned
			case n.Partial || n.Answer || n.Claimed:
				e.State = Partial
			default:
				e.State = Waiting
			}
		} else if oldVersion(name) || isOldVersionSibling(name) {
			e.State = OldVersion
		}
		out = append(out, e)
	}
	return out, nil
}

// Remove removes one file Scan listed, if it is a name the queue makes
// (Foreign files are refused), relative to the directory's descriptor.
func (q *Queue) Remove(e Entry) error {
	if e.State == Foreign {
		return fmt.Errorf("remove %s: %w", e.File, errName)
	}
	d, err := q.openDir(false)
	if err != nil {
		return fmt.Errorf("remove %s: %w", e.File, err)
	}
	defer d.Close()
	if err := d.Remove(e.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", e.File, err)
	}
	return nil
}

// checkDir accepts the directory only if nobody else controls it: not
// writable by everyone, and the user's, or, in a shared queue, of the
// shared group. Requests must not go where someone else chose, nor be read
// from there.
func (q *Queue) checkDir(mode fs.FileMode, uid, gid int) error {
	if !mode.IsDir() {
		return fmt.Errorf("%s is not a directory", q.cfg.Dir)
	}
	if mode.Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by everyone", q.cfg.Dir)
	}
	switch {
	case uid < 0: // no owners here
		return nil
	case uid == os.Geteuid():
		if mode.Perm()&0o200 == 0 {
			return fmt.Errorf("%s is not writable by its owner", q.cfg.Dir)
		}
		return nil
	case q.cfg.Group >= 0 && gid == q.cfg.Group:
		// A member's directory, for the group: only if the group may write
		// to it, or its maker could keep files in it nobody else can remove.
		if mode.Perm()&0o020 == 0 {
			return fmt.Errorf("%s is not writable by its group", q.cfg.Dir)
		}
		return nil
	}
	return fmt.Errorf("%s belongs to uid %d", q.cfg.Dir, uid)
}

// wrap names the operation in err; nil stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// list opens the directory and lists it, oldest request first (the time
// leads the name). A directory that does not exist is (nil, nil, nil): an
// empty queue. The caller closes the directory.
func (q *Queue) list() (*safefile.Dir, []string, error) {
	d, err := q.openDir(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	names, err := d.Names()
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	slices.Sort(names)
	return d, names, nil
}

// openDir opens and checks the directory, creating it first when create is
// set and it is missing. Everything else the queue does goes through the
// descriptor it returns.
func (q *Queue) openDir(create bool) (*safefile.Dir, error) {
	if create {
		if err := safefile.MkdirGroup(q.cfg.Dir, q.cfg.DirPerm, q.cfg.Group); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	d, err := safefile.OpenDir(q.cfg.Dir)
	if err != nil {
		return nil, err
	}
	mode, uid, gid, err := d.Owner()
	if err == nil {
		err = q.checkDir(mode, uid, gid)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}
