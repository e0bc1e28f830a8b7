package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/registry/internal/queue"
	"github.com/portfor/portfor/store"
)

// Severity grades a Finding.
type Severity string

const (
	// OK is a check that passed.
	OK Severity = "ok"
	// Note is worth knowing and needs no action.
	Note Severity = "note"
	// Problem needs attention; Doctor with fix repairs the safe ones.
	Problem Severity = "problem"
	// Fixed is a problem Doctor repaired.
	Fixed Severity = "fixed"
)

// Finding is one thing [Registry.Doctor] found.
type Finding struct {
	Severity Severity
	Text     string
}

// Report is what [Registry.Doctor] found, in the order it looked.
type Report struct {
	Findings []Finding
}

// Problems counts the findings that still need attention.
func (r Report) Problems() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == Problem {
			n++
		}
	}
	return n
}

func (r *Report) add(s Severity, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{s, fmt.Sprintf(format, args...)})
}

// problem records a problem, or, when fix is set and repair succeeds, what
// was fixed.
func (r *Report) problem(fix bool, repair func() error, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if fix && repair != nil {
		if err := repair(); err != nil {
			r.add(Problem, "%s (repair failed: %v)", text, err)
			return
		}
		r.add(Fixed, "%s", text)
		return
	}
	r.add(Problem, "%s", text)
}

// Doctor checks the registry: file permissions and owner, schema, bbolt's
// page structure and the agreement of the id and port indexes in both
// files, leases whose owner is gone, leased ports held by processes other
// than the owner (or its descendants), pending requests of processes that
// are gone, and lease files of earlier boots. With fix it repairs what is
// safe to repair: permissions that are wider than portfor's, index drift
// (the port index is rebuilt from the assignments), dead leases, stale
// pending requests and old lease files. It holds the exclusive lock
// throughout, so it sees, and repairs, a registry nobody is changing.
func (r *Registry) Doctor(ctx context.Context, fix bool) (Report, error) {
	if err := r.usable(); err != nil {
		return Report{}, fmt.Errorf("doctor: %w", err)
	}
	var rep Report
	if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
		rep.add(Note, "no registry yet at %s (it is created by the first assignment)", r.path)
		return rep, nil
	}
	held, err := r.lock(ctx, lock.Exclusive)
	if err != nil {
		return rep, err
	}
	defer held.Unlock()

	r.checkFile(&rep, fix, r.path)
	r.checkFile(&rep, fix, r.lockPath)
	leasePath, _ := r.leaseFile()
	if _, err := os.Lstat(leasePath); err == nil {
		r.checkFile(&rep, fix, leasePath)
	}
	for _, path := range []string{r.path, leasePath} {
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		if err := r.checkStore(&rep, fix, path); err != nil {
			rep.add(Problem, "%v", err)
		}
	}
	r.checkPending(&rep, fix)
	r.checkOldLeaseFiles(&rep, fix, leasePath)
	return rep, nil
}

// checkFile reports permissions wider than portfor gives its files, and a
// file owned by another user in a registry that is not shared.
func (r *Registry) checkFile(rep *Report, fix bool, path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		return
	}
	if !fi.Mode().IsRegular() {
		rep.add(Problem, "%s is not a regular file (%s): move it away", path, fi.Mode().Type())
		return
	}
	want := r.filePerm()
	if extra := fi.Mode().Perm() &^ want; extra != 0 {
		rep.problem(fix, func() error {
			// Through the open file, so a link put there since is not followed.
			f, err := safefile.Open(path, os.O_RDONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Chmod(want)
		}, "%s is mode %04o: wider than %04o (others may read or change the registry)", path, fi.Mode().Perm(), want)
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() && !r.shared {
		rep.add(Problem, "%s belongs to uid %d, not to you (uid %d)", path, uid, os.Geteuid())
	}
}

// checkStore checks one bbolt file: schema, structure, indexes, leases.
func (r *Registry) checkStore(rep *Report, fix bool, path string) error {
	db, err := store.Open(path, store.Options{Perm: r.filePerm()})
	if err != nil {
		return err
	}
	defer db.Close()
	name := filepath.Base(path)
	// Repairs are noted as they are made and reported as fixed only once
	// the transaction has committed.
	var repairs []string
	var damaged bool
	err = db.Update(func(tx *store.Tx) error {
		rep.add(OK, "%s: portfor registry, schema %d, %d entries", name, store.SchemaVersion, tx.Len())
		if err := tx.Check(); err != nil {
			var ce *store.CheckError
			if !errors.As(err, &ce) {
				return err
			}
			for _, p := range ce.Problems {
				if p.Kind == store.PageDamage {
					damaged = true
					rep.add(Problem, "%s: %s (not repairable here: restore the file from a copy, or move it away to start afresh)", name, p)
				}
			}
			if !damaged {
				changed, clashes, rerr := tx.RebuildPortIndex()
				if rerr != nil {
					return rerr
				}
				for _, c := range changed {
					repairs = append(repairs, fmt.Sprintf("%s: index drift: %s", name, c))
				}
				for _, c := range clashes {
					rep.add(Problem, "%s: %s", name, c)
				}
			}
		} else {
			rep.add(OK, "%s: bbolt structure sound, id and port indexes agree", name)
		}
		dead, err := r.checkLeases(rep, tx, name)
		if err != nil {
			return err
		}
		repairs = append(repairs, dead...)
		if !fix || damaged {
			return errRollback // report only, or never write into a damaged file
		}
		return nil
	})
	switch {
	case errors.Is(err, errRollback) || err == nil:
		sev := Problem
		if err == nil && fix {
			sev = Fixed
		}
		for _, text := range repairs {
			rep.add(sev, "%s", text)
		}
		return nil
	}
	for _, text := range repairs {
		rep.add(Problem, "%s (repair failed: %v)", text, err)
	}
	return nil
}

// errRollback ends a transaction that must not commit.
var errRollback = errors.New("rollback")

// checkLeases deletes leases of dead owners in tx (kept only if tx
// commits) and returns what it deleted; it reports ports held by others.
func (r *Registry) checkLeases(rep *Report, tx *store.Tx, name string) (deleted []string, err error) {
	var dead, live []store.Entry
	var stable []store.Entry
	_ = tx.ForEach(func(e store.Entry) error {
		switch {
		case e.Kind != store.Lease:
			stable = append(stable, e)
		case procinfoAlive(e):
			live = append(live, e)
		default:
			dead = append(dead, e)
		}
		return nil
	})
	for _, e := range dead {
		if _, _, err := tx.Delete(e.ID); err != nil {
			return nil, err
		}
		deleted = append(deleted, fmt.Sprintf("%s: port %d is leased to pid %d, which is gone (%s)", name, e.Port, e.OwnerPID, e.Command))
	}
	for _, e := range live {
		for _, pid := range procinfo.PortHolders(e.Port) {
			if !procinfo.Descends(pid, e.OwnerPID) {
				rep.add(Problem, "%s: port %d is leased to pid %d (%s) but held by pid %d (%s)",
					name, e.Port, e.OwnerPID, e.Command, pid, procinfo.Command(pid))
			}
		}
	}
	for _, e := range stable {
		for _, pid := range procinfo.PortHolders(e.Port) {
			rep.add(Note, "%s: port %d (%s) is in use by pid %d (%s)", name, e.Port, e.ID, pid, procinfo.Command(pid))
		}
	}
	if len(dead) == 0 && len(live) > 0 {
		rep.add(OK, "%s: %d leases, all owners running", name, len(live))
	}
	return deleted, nil
}

func procinfoAlive(e store.Entry) bool {
	alive, err := procinfo.Alive(procinfo.Identity{PID: e.OwnerPID, Start: e.OwnerStart})
	return alive || err != nil
}

// checkPending reports what callers that are gone left in the queue. It
// considers only names the queue makes and removes through the queue,
// relative to the directory it checked.
func (r *Registry) checkPending(rep *Report, fix bool) {
	entries, err := r.queue.Scan()
	if err != nil {
		rep.add(Problem, "pending requests: %v (move the directory away)", err)
		return
	}
	for _, e := range entries {
		switch e.State {
		case queue.Abandoned:
			rep.problem(fix, func() error { return r.queue.Remove(e) }, "pending: %s was left by pid %d, which is gone", e.File, e.Name.Asker.PID)
		case queue.OldVersion:
			if e.Age > 10*time.Minute {
				rep.problem(fix, func() error { return r.queue.Remove(e) }, "pending: %s is left over from an older portfor", e.File)
			}
		case queue.Foreign:
			rep.add(Note, "pending: %s is not a file portfor makes (left alone)", e.File)
		}
	}
}

// checkOldLeaseFiles reports lease files of earlier boots.
func (r *Registry) checkOldLeaseFiles(rep *Report, fix bool, current string) {
	dir, prefix := filepath.Dir(r.path), filepath.Base(r.path)+".leases"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), prefix) && path != current {
			rep.problem(fix, func() error { return os.Remove(path) }, "%s is a lease file of an earlier boot: its owners are all gone", e.Name())
		}
	}
}
