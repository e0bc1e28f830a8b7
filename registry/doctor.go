package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/internal/sockdiag"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry/internal/queue"
	"github.com/portfor/portfor/store"
)

// Severity grades a [Finding].
type Severity string

const (
	// SeverityOK is a check that passed.
	SeverityOK Severity = "ok"
	// SeverityNote is worth knowing and needs nobody to act: among others,
	// what killed processes leave behind, which portfor cleans up itself.
	SeverityNote Severity = "note"
	// SeverityProblem needs a person, or Doctor with Fix where the finding
	// says so.
	SeverityProblem Severity = "problem"
	// SeverityFixed is a problem or leftover Doctor repaired.
	SeverityFixed Severity = "fixed"
)

// Finding is one thing [Registry.Doctor] found.
type Finding struct {
	Severity Severity
	Text     string
}

// Report is what [Registry.Doctor] found, in the order it looked.
type Report struct {
	Findings []Finding
	// Locked is how long Doctor held the registry's lock (shared while it
	// read, exclusive while it repaired): how long it may have made others
	// wait.
	Locked time.Duration
}

// Problems counts the findings that still need attention: a health check
// passes when it is 0.
func (r Report) Problems() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == SeverityProblem {
			n++
		}
	}
	return n
}

func (r *Report) add(s Severity, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{s, fmt.Sprintf(format, args...)})
}

// DoctorOptions say what [Registry.Doctor] may do. The zero value only
// looks.
type DoctorOptions struct {
	// Fix repairs what has one right answer: permissions wider than
	// portfor's, index drift (the port index is rebuilt from the
	// assignments), a live lease on a port a name holds (the name is the
	// lasting claim: the lease is ended), and the leftovers of processes
	// that are gone (dead leases, abandoned requests, lease files of
	// earlier boots).
	Fix bool
}

// Doctor checks the registry: the files' permissions and owner, schema,
// bbolt's page structure and the agreement of the id and port indexes in
// both files, ports both a name and a live lease hold (one in each file),
// leased ports held by processes other than the owner (or its
// descendants), and what processes that are gone left behind. It reads
// under the shared lock, for as short a time as copying the entries takes,
// looks at processes and sockets without the lock, and takes the exclusive
// lock only to repair (docs/design.md, "Doctor").
//
// Leftovers that portfor cleans up by itself are notes; a report whose
// Problems is 0 describes a healthy registry.
func (r *Registry) Doctor(ctx context.Context, opts DoctorOptions) (Report, error) {
	var rep Report
	if err := r.usable(); err != nil {
		return rep, fmt.Errorf("doctor: %w", err)
	}
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		rep.add(SeverityNote, "no registry yet at %s (it is created by the first assignment)", r.path)
		return rep, nil
	}
	snap, err := r.snapshot(ctx, &rep)
	if err != nil {
		return rep, fmt.Errorf("doctor: %w", err)
	}
	fix := r.examine(&rep, snap)
	noteGoneScopes(&rep, snap)
	if opts.Fix && !fix.empty() {
		start := time.Now()
		err := r.repair(ctx, &rep, fix)
		rep.Locked += time.Since(start)
		if err != nil {
			return rep, fmt.Errorf("doctor: %w", err)
		}
	} else {
		fix.report(&rep)
	}
	return rep, nil
}

// storeSnapshot is what Doctor read of one bbolt file.
type storeSnapshot struct {
	path     string
	name     string
	ok       bool // a portfor registry that bbolt could open
	damaged  bool // page damage: never written to
	drift    []store.Problem
	entries  []store.Entry
	wideMode os.FileMode // the mode, when wider than portfor's
	wantMode os.FileMode // portfor's
}

// snapshot checks the files and copies both files' entries under the
// shared lock.
func (r *Registry) snapshot(ctx context.Context, rep *Report) ([]storeSnapshot, error) {
	start := time.Now()
	l, err := r.lock(ctx, lock.Shared)
	if err != nil {
		return nil, err
	}
	defer func() {
		l.Unlock()
		rep.Locked += time.Since(start)
	}()
	if r.shared {
		if fi, err := os.Stat(filepath.Dir(r.path)); err == nil && fi.Mode()&os.ModeSticky == 0 {
			rep.add(SeverityProblem, "%s is shared by its group but has no sticky bit: a member can remove another's lock file while it is held (chmod +t %s)",
				filepath.Dir(r.path), filepath.Dir(r.path))
		}
	}
	leasePath, _ := r.leaseFile()
	var snaps []storeSnapshot
	for _, path := range []string{r.path, leasePath, r.lockPath} {
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		s := storeSnapshot{path: path, name: filepath.Base(path)}
		if !fi.Mode().IsRegular() {
			rep.add(SeverityProblem, "%s is not a regular file (%s): move it away", path, fi.Mode().Type())
			continue
		}
		if uid, _, ok := safefile.Owner(fi); ok && uid != os.Geteuid() && !r.shared {
			rep.add(SeverityProblem, "%s belongs to uid %d, not to you (uid %d)", path, uid, os.Geteuid())
		}
		if path != r.lockPath {
			if err := r.readStore(&s, rep); err != nil {
				rep.add(SeverityProblem, "%v", err)
				continue // not a registry: nothing to chmod either
			}
		}
		if s.wantMode = r.filePerm(); fi.Mode().Perm()&^s.wantMode != 0 {
			s.wideMode = fi.Mode().Perm()
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// readStore opens one file read-only and reads it into s.
func (r *Registry) readStore(s *storeSnapshot, rep *Report) error {
	db, err := store.Open(s.path, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	s.ok = true
	return db.View(func(tx *store.Tx) error {
		rep.add(SeverityOK, "%s: portfor registry, schema %d, %d entries", s.name, store.SchemaVersion, tx.Len())
		var ce *store.CheckError
		if err := tx.Check(); errors.As(err, &ce) {
			for _, p := range ce.Problems {
				if p.Kind == store.PageDamage {
					s.damaged = true
					rep.add(SeverityProblem, "%s: %s (not repairable here: restore the file from a copy, or move it away to start afresh)", s.name, p.Text)
				} else {
					s.drift = append(s.drift, p)
				}
			}
		} else if err != nil {
			return err
		} else {
			rep.add(SeverityOK, "%s: bbolt structure sound, id and port indexes agree", s.name)
		}
		return tx.ForEach(func(e store.Entry) error {
			s.entries = append(s.entries, e)
			return nil
		})
	})
}

// repairs is what Doctor found that has one right answer.
type repairs struct {
	chmod      []storeSnapshot // wider than portfor's
	drift      []storeSnapshot // index drift, in a file without page damage
	clashes    []clash         // live leases on names' ports, in files without page damage
	deadLeases map[string][]store.Entry
	requests   []queue.Entry // abandoned by callers that are gone, or of an older portfor and stale
	oldFiles   []string      // lease files of earlier boots
}

func (f repairs) empty() bool {
	return len(f.chmod)+len(f.drift)+len(f.clashes)+len(f.deadLeases)+len(f.requests)+len(f.oldFiles) == 0
}

// clash is a live lease on the port of a name held in another file: each
// file's port index is sound, but the two together give the port twice
// (the registry file restored from a copy older than the lease).
type clash struct {
	name, lease claim
}

// claim is an entry and the file it was read in.
type claim struct {
	path, file string // the file's path and name
	e          store.Entry
}

func (c clash) String() string {
	return fmt.Sprintf("port %d is held by the name %q in %s and leased to pid %d (%s) in %s",
		c.name.e.Port, c.name.e.ID, c.name.file, c.lease.e.OwnerPID, c.lease.e.Command, c.lease.file)
}

// examine looks at what the snapshot holds, without the lock: processes,
// sockets and the queue. It reports what needs a person and returns what
// can be repaired.
func (r *Registry) examine(rep *Report, snaps []storeSnapshot) repairs {
	fix := repairs{deadLeases: map[string][]store.Entry{}}
	var ports []int
	var leases, stable []claim
	for _, s := range snaps {
		if s.wideMode != 0 {
			fix.chmod = append(fix.chmod, s)
		}
		if len(s.drift) > 0 && !s.damaged {
			fix.drift = append(fix.drift, s)
		}
		aliveOwners := map[procinfo.Identity]bool{}
		for _, e := range s.entries {
			ports = append(ports, e.Port)
			if e.Kind != store.Lease {
				stable = append(stable, claim{s.path, s.name, e})
				continue
			}
			owner := leaseOwner(e)
			a, ok := aliveOwners[owner]
			if !ok {
				a = alive(owner)
				aliveOwners[owner] = a
			}
			if a {
				leases = append(leases, claim{s.path, s.name, e})
			} else if !s.damaged {
				fix.deadLeases[s.path] = append(fix.deadLeases[s.path], e)
			}
		}
	}
	fix.clashes = clashes(rep, stable, leases, snaps)
	// One lookup for every port (netlink; on macOS one run of lsof). Where
	// sockets cannot be looked up (an unsupported system), the checks that
	// need them are skipped.
	holders := map[int][]int{}
	socks, sockErr := sockdiag.Holding(ports...)
	for _, sk := range socks {
		p := int(sk.Local.Port())
		for _, pid := range sk.PIDs {
			if !slices.Contains(holders[p], pid) {
				holders[p] = append(holders[p], pid)
			}
		}
	}
	for _, l := range leases {
		for _, pid := range holders[l.e.Port] {
			if !procinfo.Descends(pid, l.e.OwnerPID) {
				rep.add(SeverityProblem, "%s: port %d is leased to pid %d (%s) but held by pid %d (%s)",
					l.file, l.e.Port, l.e.OwnerPID, l.e.Command, pid, procinfo.Command(pid))
			}
		}
	}
	if len(leases) > 0 {
		rep.add(SeverityOK, "%d leases, owners running", len(leases))
	}
	inUse := 0
	for _, s := range stable {
		if len(holders[s.e.Port]) > 0 {
			inUse++
		}
	}
	if len(stable) > 0 && sockErr == nil {
		rep.add(SeverityNote, "%d of %d names have their port in use now", inUse, len(stable))
	}
	named := make([]Assignment, len(stable))
	for i, l := range stable {
		named[i] = fromEntry(l.e)
	}
	noteElsewhere(rep, named, holders)

	entries, err := r.queue.Scan()
	if err != nil {
		rep.add(SeverityProblem, "pending requests: %v (move the directory away)", err)
	}
	for _, e := range entries {
		switch e.State {
		case queue.Abandoned:
			fix.requests = append(fix.requests, e)
		case queue.OldVersion:
			if e.Age > 10*time.Minute {
				fix.requests = append(fix.requests, e)
			}
		case queue.Foreign:
			rep.add(SeverityNote, "%s.pending/%s is not a file portfor makes (left alone)", filepath.Base(r.path), e.File)
		}
	}
	fix.oldFiles = r.oldLeaseFiles()
	return fix
}

// clashes finds the live leases on ports that names hold in another file
// (within one file, the port index check finds two claims). It reports
// those in a file with page damage, which is never written to, and
// returns the others, which a repair can end.
func clashes(rep *Report, stable, leases []claim, snaps []storeSnapshot) []clash {
	names := map[int][]claim{}
	for _, n := range stable {
		names[n.e.Port] = append(names[n.e.Port], n)
	}
	damaged := map[string]bool{}
	for _, s := range snaps {
		damaged[s.path] = s.damaged
	}
	var out []clash
	for _, l := range leases {
		for _, n := range names[l.e.Port] {
			if n.path == l.path {
				continue
			}
			c := clash{name: n, lease: l}
			if damaged[l.path] {
				rep.add(SeverityProblem, "%s: each will find it taken (the lease file has page damage: end the lease's process)", c)
				continue
			}
			out = append(out, c)
		}
	}
	return out
}

// report lists what a repair would do, without doing it.
func (f repairs) report(rep *Report) {
	for _, s := range f.chmod {
		rep.add(SeverityProblem, "%s is mode %04o: wider than %04o (others may read or change the registry)", s.path, s.wideMode, s.wantMode)
	}
	for _, s := range f.drift {
		for _, p := range s.drift {
			rep.add(SeverityProblem, "%s: index drift: %s", s.name, p.Text)
		}
	}
	for _, c := range f.clashes {
		rep.add(SeverityProblem, "%s: each will find it taken (portfor doctor --fix ends the lease: the name is the lasting claim)", c)
	}
	f.notes(rep, SeverityNote, "")
}

// notes reports the leftovers of processes that are gone as counts.
func (f repairs) notes(rep *Report, sev Severity, verb string) {
	n := 0
	for _, dead := range f.deadLeases {
		n += len(dead)
	}
	if n > 0 {
		rep.add(sev, "%s%d leases of processes that are gone (the next lease on their ports, or portfor gc, frees them)", verb, n)
	}
	if len(f.requests) > 0 {
		rep.add(sev, "%s%d queued requests left by callers that are gone (the next new name clears them)", verb, len(f.requests))
	}
	if len(f.oldFiles) > 0 {
		rep.add(sev, "%s%d lease files of earlier boots (removed when this boot's lease file is made)", verb, len(f.oldFiles))
	}
}

// repair carries out f under the exclusive lock.
func (r *Registry) repair(ctx context.Context, rep *Report, f repairs) error {
	l, err := r.lock(ctx, lock.Exclusive)
	if err != nil {
		return err
	}
	defer l.Unlock()
	for _, s := range f.chmod {
		err := chmodOpen(s.path, r.filePerm())
		r.noteRepair(rep, err, "%s was mode %04o: now %04o", s.path, s.wideMode, s.wantMode)
	}
	for _, s := range f.drift {
		r.rebuildIndex(rep, s)
	}
	r.endClashes(rep, f.clashes)
	var freed []store.Entry
	for path, dead := range f.deadLeases {
		err := r.updateFile(path, func(tx *store.Tx) error {
			for _, e := range dead {
				if cur, ok, err := tx.Get(e.ID); err != nil || !ok || leaseOwner(cur) != leaseOwner(e) {
					continue // changed since it was read: not ours to free
				}
				if _, _, err := tx.Delete(e.ID); err != nil {
					return err
				}
				freed = append(freed, e)
			}
			return nil
		})
		r.noteRepair(rep, err, "freed %d leases of processes that are gone", len(freed))
	}
	removed := 0
	var failed []string
	for _, e := range f.requests {
		if err := r.queue.Remove(e); err != nil {
			failed = append(failed, err.Error())
		} else {
			removed++
		}
	}
	if removed > 0 {
		rep.add(SeverityFixed, "removed %d queued requests left by callers that are gone", removed)
	}
	for _, text := range failed {
		rep.add(SeverityProblem, "pending: %s (move it away by hand)", text)
	}
	removed = 0
	for _, old := range f.oldFiles {
		if os.Remove(old) == nil {
			removed++
		}
	}
	if len(f.oldFiles) > 0 {
		rep.add(SeverityFixed, "removed %d lease files of earlier boots", removed)
	}
	return nil
}

// endClashes ends the leases on names' ports, each only if the name still
// holds the port and the lease is still its owner's, read again under the
// exclusive lock the caller holds.
func (r *Registry) endClashes(rep *Report, cs []clash) {
	byFile := map[string][]clash{} // by the names' file, read once
	for _, c := range cs {
		byFile[c.name.path] = append(byFile[c.name.path], c)
	}
	var still []clash
	for path, cs := range byFile {
		err := withStore(path, store.Options{ReadOnly: true}, func(db *store.DB) error {
			return db.View(func(tx *store.Tx) error {
				for _, c := range cs {
					e, ok, err := tx.Get(c.name.e.ID)
					if err != nil {
						return err
					}
					if ok && e.Kind == store.Stable && e.Port == c.name.e.Port {
						still = append(still, c)
					}
				}
				return nil
			})
		})
		if err != nil {
			rep.add(SeverityProblem, "%s: reading it again to end %d leases failed: %v", filepath.Base(path), len(cs), err)
		}
	}
	slices.SortFunc(still, func(a, b clash) int { return a.lease.e.Port - b.lease.e.Port })
	byLeaseFile := map[string][]clash{}
	var leaseFiles []string
	for _, c := range still {
		if byLeaseFile[c.lease.path] == nil {
			leaseFiles = append(leaseFiles, c.lease.path)
		}
		byLeaseFile[c.lease.path] = append(byLeaseFile[c.lease.path], c)
	}
	for _, path := range leaseFiles {
		var ended []clash
		err := r.updateFile(path, func(tx *store.Tx) error {
			for _, c := range byLeaseFile[path] {
				cur, ok, err := tx.Get(c.lease.e.ID)
				if err != nil {
					return err
				}
				if !ok || cur.Kind != store.Lease || cur.Port != c.lease.e.Port || leaseOwner(cur) != leaseOwner(c.lease.e) {
					continue // changed since it was read: not ours to end
				}
				if _, _, err := tx.Delete(cur.ID); err != nil {
					return err
				}
				ended = append(ended, c)
			}
			return nil
		})
		if err != nil {
			rep.add(SeverityProblem, "%s: ending %d leases on names' ports failed: %v", filepath.Base(path), len(byLeaseFile[path]), err)
			continue
		}
		for _, c := range ended {
			rep.add(SeverityFixed, "ended the lease on port %d of pid %d (%s) in %s: the name %q holds the port in %s",
				c.lease.e.Port, c.lease.e.OwnerPID, c.lease.e.Command, c.lease.file, c.name.e.ID, c.name.file)
		}
	}
}

func (r *Registry) noteRepair(rep *Report, err error, format string, args ...any) {
	if err != nil {
		rep.add(SeverityProblem, "%s: repair failed: %v", fmt.Sprintf(format, args...), err)
		return
	}
	rep.add(SeverityFixed, format, args...)
}

// rebuildIndex rebuilds one file's port index from its assignments.
func (r *Registry) rebuildIndex(rep *Report, s storeSnapshot) {
	var changed, clashes []string
	err := r.updateFile(s.path, func(tx *store.Tx) error {
		var err error
		changed, clashes, err = tx.RebuildPortIndex()
		return err
	})
	if err != nil {
		rep.add(SeverityProblem, "%s: index drift: rebuilding the port index failed: %v", s.name, err)
		return
	}
	for _, c := range changed {
		rep.add(SeverityFixed, "%s: index drift: %s", s.name, c)
	}
	for _, c := range clashes {
		rep.add(SeverityProblem, "%s: %s", s.name, c)
	}
}

// updateFile runs fn in a write transaction on the bbolt file at path.
// Call it under the exclusive lock.
func (r *Registry) updateFile(path string, fn func(*store.Tx) error) error {
	return withStore(path, store.Options{Perm: r.filePerm()}, func(db *store.DB) error { return db.Update(fn) })
}

// chmodOpen sets a file's mode through a descriptor of it, so that a link
// put in its place since it was checked is not followed.
func chmodOpen(path string, perm os.FileMode) error {
	f, err := safefile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(perm)
}

// noteGoneScopes notes each scope whose directory is gone (a git worktree
// that was removed): its names hold ports until 'portfor prune' (Prune)
// frees them. A note, not a problem: nothing is wrong, only unused.
func noteGoneScopes(rep *Report, snaps []storeSnapshot) {
	by := map[string][]store.Entry{}
	for _, s := range snaps {
		for _, e := range s.entries {
			if scope, _ := splitKey(e.ID); scope != "" && e.Kind == store.Stable {
				by[scope] = append(by[scope], e)
			}
		}
	}
	var gone []string
	for scope, es := range by {
		if dirsGone(es) {
			gone = append(gone, scope)
		}
	}
	slices.Sort(gone)
	for _, scope := range gone {
		rep.add(SeverityNote, "scope %q: its directory is gone; its %d names hold ports until 'portfor prune' frees them", scope, len(by[scope]))
	}
}

// noteElsewhere notes each name whose port is held by a process running in
// the directory of other names (Process.Elsewhere): the server a person
// would stop thinking it was another worktree's.
func noteElsewhere(rep *Report, named []Assignment, holders map[int][]int) {
	var hs homes // made once a name's port is held: it reads every name's directory
	for _, a := range named {
		for _, pid := range holders[a.Port] {
			if !procinfo.SameMounts(pid) {
				continue // its Dir is a path of another mount namespace
			}
			if hs == nil {
				hs = homesOf(named)
			}
			d := procinfo.Dir(pid)
			h := hs.elsewhere(d, a)
			if h == nil {
				continue
			}
			rep.add(SeverityNote, "%s: port %d is held by pid %d (%s) running in %s, the directory of %s",
				a.Key(), a.Port, pid, procinfo.Program(pid), d, h)
		}
	}
}
