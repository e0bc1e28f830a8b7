//go:build unix

package registry_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/registry"
)

func TestOwnSymlinkIsFollowed(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "registry.db")
	reg, err := registry.Open(real, registry.Options{})
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	link := filepath.Join(dir, "link.db")
	require.NoError(t, os.Symlink(real, link))

	via, err := registry.Open(link, registry.Options{})
	require.NoError(t, err)
	assert.Equal(t, real, via.Path())
	a, err := via.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.NotZero(t, a.Port)
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give files to another user")
	}
}

func TestPathsAnotherUserControlsAreRefused(t *testing.T) {
	requireRoot(t)
	const nobody = 65534
	base := t.TempDir()

	// A world-writable, sticky directory, like /tmp.
	tmp := filepath.Join(base, "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o777))
	require.NoError(t, os.Chmod(tmp, 0o777|os.ModeSticky))

	planted := filepath.Join(tmp, "registry.db")
	require.NoError(t, os.WriteFile(planted, nil, 0o666))
	require.NoError(t, os.Chown(planted, nobody, nobody))

	theirs := filepath.Join(base, "theirs.db")
	require.NoError(t, os.WriteFile(theirs, []byte("their data"), 0o600))
	require.NoError(t, os.Chown(theirs, nobody, nobody))
	linkToTheirs := filepath.Join(base, "mine.db")
	require.NoError(t, os.Symlink(theirs, linkToTheirs))

	ownTarget := filepath.Join(base, "own.db")
	theirLink := filepath.Join(tmp, "their-link.db")
	require.NoError(t, os.Symlink(ownTarget, theirLink))
	require.NoError(t, os.Lchown(theirLink, nobody, nobody))

	lockPlanted := filepath.Join(tmp, "other.db")
	require.NoError(t, os.WriteFile(lockPlanted+".lock", nil, 0o666))
	require.NoError(t, os.Chown(lockPlanted+".lock", nobody, nobody))

	open := filepath.Join(base, "open")
	require.NoError(t, os.Mkdir(open, 0o777))
	require.NoError(t, os.Chmod(open, 0o777)) // world-writable, not sticky

	for path, why := range map[string]string{
		planted:                            "owned by uid 65534 in world-writable directory " + tmp,
		linkToTheirs:                       "a symbolic link to " + theirs + ", owned by uid 65534",
		theirLink:                          "a symbolic link owned by uid 65534",
		lockPlanted:                        "other.db.lock: owned by uid 65534 in world-writable directory",
		filepath.Join(open, "registry.db"): "writable by everyone and not sticky",
	} {
		_, err := registry.Open(path, registry.Options{})
		require.ErrorIs(t, err, registry.ErrUnsafePath, path)
		assert.Contains(t, err.Error(), why, path)
	}
	b, err := os.ReadFile(theirs)
	require.NoError(t, err)
	assert.Equal(t, "their data", string(b), "never written")

	// Our own file in /tmp is fine.
	mine := filepath.Join(tmp, "mine.db")
	reg, err := registry.Open(mine, registry.Options{})
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
}

func TestGroupWritableDirectoryMakesASharedRegistry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	require.NoError(t, os.Mkdir(dir, 0o770))
	require.NoError(t, os.Chmod(dir, 0o770|os.ModeSetgid))
	reg, err := registry.Open(filepath.Join(dir, "registry.db"), registry.Options{})
	require.NoError(t, err)
	_, err = reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	_, err = reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	for _, p := range []string{reg.Path(), reg.LockPath(), reg.LeasePath()} {
		fi, err := os.Stat(p)
		require.NoError(t, err, p)
		assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), p)
	}

	private := filepath.Join(t.TempDir(), "private", "registry.db")
	reg, err = registry.Open(private, registry.Options{})
	require.NoError(t, err)
	_, err = reg.Lease(ctx, registry.LeaseOptions{})
	require.NoError(t, err)
	for _, p := range []string{reg.Path(), reg.LockPath(), reg.LeasePath()} {
		fi, err := os.Stat(p)
		require.NoError(t, err, p)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}
	fi, err := os.Stat(filepath.Dir(private))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// A registry file with a second hard link is refused through either path:
// the two paths would have two lock files, two lease files and two pending
// directories over one registry, so writers coming through one would not
// wait for those coming through the other, and leases made through one
// would not see the other's (3 ports leased twice in 640 across 16 writers,
// docs/bench/hardlink-writers.sh).
func TestHardLinkedRegistryIsRefused(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.db")
	reg, err := registry.Open(a, registry.Options{})
	require.NoError(t, err)
	port, err := reg.ForwardPort(ctx, "web", 0)
	require.NoError(t, err)
	b := filepath.Join(dir, "b.db")
	if err := os.Link(a, b); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	for _, path := range []string{a, b} {
		_, err := registry.Open(path, registry.Options{})
		require.ErrorIs(t, err, registry.ErrUnsafePath, path)
		assert.Contains(t, err.Error(), "has 2 hard links")
	}
	// A symbolic link to a hard-linked file is refused as well.
	require.NoError(t, os.Symlink(b, filepath.Join(dir, "sym.db")))
	_, err = registry.Open(filepath.Join(dir, "sym.db"), registry.Options{})
	require.ErrorIs(t, err, registry.ErrUnsafePath)

	// One path again: the registry is usable, and unchanged.
	require.NoError(t, os.Remove(b))
	reg, err = registry.Open(a, registry.Options{})
	require.NoError(t, err)
	got, err := reg.Lookup(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, port, got.Port)

	// The same for the lease file, which two registries must not share.
	other := filepath.Join(dir, "other.db")
	f, err := os.OpenFile(reg.LeasePath(), os.O_CREATE|os.O_RDONLY, 0o600) // there already, or made empty
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, os.Link(reg.LeasePath(), other))
	_, err = registry.Open(a, registry.Options{})
	require.ErrorIs(t, err, registry.ErrUnsafePath)
}
