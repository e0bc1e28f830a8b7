package registrytest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portfor/portfor/internal/safefile"
	"github.com/portfor/portfor/registry"
)

// lockTimeout bounds a wait for a registry's lock. It is well above the
// registry's default: `go test -race ./...` on a small machine can keep the
// lock busy for seconds (the 8 x 50 collision test under -race on 2 busy
// cores waited more than 10 s), and a test must not fail for that. A lock
// still held after it is stuck, and the fallback is used.
const lockTimeout = time.Minute

// userRegistry opens the user's registry, once per test binary.
var userRegistry = sync.OnceValues(func() (*registry.Registry, error) {
	path, err := registry.DefaultPath()
	if err != nil {
		return nil, err
	}
	return registry.Open(path, registry.Options{LockTimeout: lockTimeout})
})

// fallbackRegistry opens the registry in the temporary directory, once per
// test binary.
var fallbackRegistry = sync.OnceValues(func() (*registry.Registry, error) {
	dir := filepath.Join(os.TempDir(), "portfor-"+userID())
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	return registry.Open(filepath.Join(dir, "registry.db"), registry.Options{LockTimeout: lockTimeout})
})

// fellBack, once set, says why the user's registry could not be used: the
// test binary uses the fallback from then on.
var fellBack atomic.Pointer[string]

// told holds the tests that were told about the fallback.
var told sync.Map

// withRegistry runs fn on the user's registry and returns that registry;
// when it cannot be used, on the fallback. It fails tb when fn fails for a
// reason other than the registry (no port left), or on both registries.
func withRegistry(tb testing.TB, fn func(*registry.Registry) error) *registry.Registry {
	tb.Helper()
	if fellBack.Load() == nil {
		reg, err := userRegistry()
		if err == nil {
			if err = fn(reg); err == nil {
				return reg
			}
			if !unusable(err) {
				tb.Fatalf("registrytest: %v", err)
			}
		}
		why := err.Error()
		fellBack.CompareAndSwap(nil, &why)
	}
	why := *fellBack.Load()
	reg, err := fallbackRegistry()
	if err == nil {
		err = fn(reg)
	}
	if err != nil {
		tb.Fatalf("registrytest: the user's registry cannot be used (%s), nor the fallback in the temporary directory: %v", why, err)
	}
	if _, done := told.LoadOrStore(tb, true); !done {
		tb.Cleanup(func() { told.Delete(tb) })
		tb.Logf("registrytest: the user's registry cannot be used (%s), so ports come from %s, shared by this user's tests that fall back too", why, reg.Path())
	}
	return reg
}

// unusable reports whether err says that a registry cannot be used, rather
// than that no port was to be had or the test ended.
func unusable(err error) bool {
	if errors.Is(err, registry.ErrLocked) {
		return true // held by something stuck
	}
	return !errors.Is(err, registry.ErrNoPortAvailable) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// userID names the user in the fallback directory's name: the uid, or on
// Windows (whose temporary directory is the user's own anyway) the SID.
func userID() string {
	if uid := os.Geteuid(); uid >= 0 {
		return strconv.Itoa(uid)
	}
	if u, err := user.Current(); err == nil {
		return u.Uid
	}
	return "user"
}

// privateDir makes dir, only the user's, or checks that it is: a directory
// (not a link to one) of the user's, that no one else may write. Someone
// else's directory there could hand the user's tests a registry they
// control; the registry's own checks (registry.Open) then apply to the
// files in it.
func privateDir(dir string) error {
	if err := safefile.MkdirGroup(dir, 0o700, -1); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	d, err := safefile.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	mode, uid, _, err := d.Owner()
	if err != nil {
		return err
	}
	if uid < 0 { // no owners here (Windows): the temporary directory is the user's
		return nil
	}
	if me := os.Geteuid(); uid != me {
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d): remove it, or set %s", dir, uid, me, registry.EnvDB)
	}
	if mode.Perm()&0o022 != 0 {
		return fmt.Errorf("%s (mode %#o) may be written by others: make it 0700, or set %s", dir, mode.Perm(), registry.EnvDB)
	}
	return nil
}
