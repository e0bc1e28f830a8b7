//go:build linux

package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWorldWritableDirectoryIsNotShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmp")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
	r, err := Open(filepath.Join(dir, "registry.db"), Options{})
	require.NoError(t, err)
	assert.False(t, r.shared)
	_, err = r.Lease(context.Background(), LeaseOptions{})
	require.NoError(t, err)
	for _, p := range []string{r.Path(), r.LockPath(), r.LeasePath()} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}
}

func TestOtherUsersFilesBesideTheRegistryAreNotTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give files to another user")
	}
	const nobody = 65534
	dir := filepath.Join(t.TempDir(), "tmp")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
	path := filepath.Join(dir, "registry.db")

	// Their lease file, under the name this boot's would have.
	probe, err := Open(path, Options{})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(probe.LeasePath(), nil, 0o666))
	require.NoError(t, os.Chown(probe.LeasePath(), nobody, nobody))
	_, err = Open(path, Options{})
	require.ErrorIs(t, err, ErrUnsafePath)
	assert.Contains(t, err.Error(), "owned by uid 65534")
	require.NoError(t, os.Remove(probe.LeasePath()))

	// Their pending directory: not used, neither to leave requests nor to take them.
	r, err := Open(path, Options{})
	require.NoError(t, err)
	pending := r.Path() + ".pending"
	require.NoError(t, os.Mkdir(pending, 0o777))
	require.NoError(t, os.Chmod(pending, 0o777))
	require.NoError(t, os.Chown(pending, nobody, nobody))
	_, err = r.queue.Enqueue(self(t), request{ID: "x"}.marshal())
	assert.Error(t, err)
	_, err = r.queue.Drain(maxBatch)
	assert.Error(t, err)
	_, err = r.ForwardPort(context.Background(), "still-works", 0)
	require.NoError(t, err)

	// A directory of theirs.
	theirs := filepath.Join(t.TempDir(), "theirs")
	require.NoError(t, os.Mkdir(theirs, 0o755))
	require.NoError(t, os.Chown(theirs, nobody, nobody))
	_, err = Open(filepath.Join(theirs, "registry.db"), Options{})
	require.ErrorIs(t, err, ErrUnsafePath)
	assert.Contains(t, err.Error(), "belongs to uid 65534")
}

func TestDoctorNeitherChmodsThroughLinksNorRemovesLiveFIFOs(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.Lease(ctx, LeaseOptions{})
	require.NoError(t, err)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, nil, 0o600))
	require.NoError(t, os.Remove(r.LeasePath()))
	require.NoError(t, os.Symlink(secret, r.LeasePath()))
	fresh := filepath.Join(r.Path()+".pending", "req-live.fifo")
	require.NoError(t, os.MkdirAll(r.Path()+".pending", 0o700))
	require.NoError(t, syscall.Mkfifo(fresh, 0o600)) // a caller between making its FIFO and its request

	rep, err := r.Doctor(ctx, DoctorOptions{Fix: true})
	require.NoError(t, err)
	var problems []string
	for _, f := range rep.Findings {
		if f.Severity == SeverityProblem {
			problems = append(problems, f.Text)
		}
	}
	assert.Contains(t, strings.Join(problems, "\n"), "is not a regular file")
	fi, err := os.Stat(secret)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the link's target keeps its mode")
	_, err = os.Lstat(fresh)
	assert.NoError(t, err, "a fresh FIFO may belong to a caller still at work")
}

// A group member who replaces the pending directory with a link to another
// directory (another member's, or /etc) makes doctor --fix remove nothing
// there: the link is refused, and only names the queue makes are ever
// removed, relative to the directory checked.
func TestDoctorFixRemovesNothingThroughALinkedPendingDirectory(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	_, err := r.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	victim := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{"passwd", "req-123", "q2-0000000000000001-999999-1-0-00000001"} {
		require.NoError(t, os.WriteFile(filepath.Join(victim, name), []byte("x"), 0o600))
		require.NoError(t, os.Chtimes(filepath.Join(victim, name), old, old))
	}
	pending := r.Path() + ".pending"
	require.NoError(t, os.RemoveAll(pending))
	require.NoError(t, os.Symlink(victim, pending))

	rep, err := r.Doctor(ctx, DoctorOptions{Fix: true})
	require.NoError(t, err)
	var problems []string
	for _, f := range rep.Findings {
		if f.Severity == SeverityProblem {
			problems = append(problems, f.Text)
		}
	}
	assert.Contains(t, strings.Join(problems, "\n"), "not a directory")
	names, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Len(t, names, 3, "nothing removed from the link's target")
	_, err = r.ForwardPort(ctx, "still-works", 0)
	require.NoError(t, err)
}
