package registrytest_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/registry/registrytest"
)

// Where the user's registry cannot be used, the helpers fall back to a
// registry in the temporary directory. These tests run a child test binary
// whose HOME cannot hold a registry, for real: a regular file in place of
// the directory, or a read-only directory (a read-only bind mount in a
// mount namespace of the child's own when root, since root ignores
// permission bits; mode 0555 otherwise).

// roHomeEnv names the directory a child (root, Linux) mounts read-only
// over itself before its test, in its own mount namespace.
const roHomeEnv = "PORTFOR_REGISTRYTEST_RO_HOME"

const fellBackLine = "registrytest: the user's registry cannot be used ("

func TestFallbackWhenHomeIsAFile(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.WriteFile(home, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, tmp := runFallbackChild(t, home, filepath.Join(dir, "tmp"), nil)
	checkFellBack(t, out, tmp)
}

func TestFallbackWhenHomeIsReadOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no read-only home directories to make here")
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	var cmd func(*exec.Cmd)
	if os.Geteuid() == 0 {
		cmd = readOnlyMount(t, home) // skips where that cannot be done
	} else {
		if err := os.Chmod(home, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(home, 0o700) })
	}
	out, tmp := runFallbackChild(t, home, filepath.Join(dir, "tmp"), cmd)
	checkFellBack(t, out, tmp)
	why := "permission denied"
	if os.Geteuid() == 0 {
		why = "read-only file system"
	}
	if !strings.Contains(out, why) { // the registry opened, and could not be written
		t.Errorf("the child does not say %q:\n%s", why, out)
	}
}

func TestNoRegistryAtAllFailsTheTestSayingWhy(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.WriteFile(home, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp") // a file too: the fallback cannot be made in it
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := fallbackChild(t, home, tmp, nil).CombinedOutput()
	if err == nil {
		t.Fatalf("the child passed:\n%s", out)
	}
	want := "nor the fallback in the temporary directory: mkdir " + filepath.Join(tmp, "portfor-")
	if !strings.Contains(string(out), want) {
		t.Errorf("the child's failure does not say %q:\n%s", want, out)
	}
}

// checkFellBack checks that the child's tests got their ports from the
// fallback registry in its temporary directory, said so once per test,
// and passed.
func checkFellBack(t *testing.T, out, tmp string) {
	t.Helper()
	if n := strings.Count(out, fellBackLine); n != 2 {
		t.Errorf("the fallback was told %d times, want once for each of the 2 tests:\n%s", n, out)
	}
	uid := strconv.Itoa(os.Geteuid())
	if want := filepath.Join(tmp, "portfor-"+uid, "registry.db"); !strings.Contains(out, "so ports come from "+want) {
		t.Errorf("the child does not say it leases from %s:\n%s", want, out)
	}
	fi, err := os.Stat(filepath.Join(tmp, "portfor-"+uid))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Errorf("the fallback directory has mode %#o, want 0700", fi.Mode().Perm())
	}
}

// fallbackChild is the command that runs TestFallbackChild with home as
// HOME and tmp as TMPDIR, no PORTFOR_DB, XDG_STATE_HOME nor port server.
func fallbackChild(t *testing.T, home, tmp string, adjust func(*exec.Cmd)) *exec.Cmd {
	t.Helper()
	cmd := childTest(t.Context(), "TestFallbackChild", "fallback",
		[]string{"HOME=" + home, "TMPDIR=" + tmp, registry.EnvDB + "=", "XDG_STATE_HOME="}, "-test.v")
	if adjust != nil {
		adjust(cmd)
	}
	return cmd
}

// runFallbackChild runs the child, expecting it to pass, and returns its
// output and tmp.
func runFallbackChild(t *testing.T, home, tmp string, adjust func(*exec.Cmd)) (string, string) {
	t.Helper()
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := fallbackChild(t, home, tmp, adjust).CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return string(out), tmp
}

// TestFallbackChild gets ports in two tests where HOME cannot hold a
// registry (see runFallbackChild).
func TestFallbackChild(t *testing.T) {
	if os.Getenv(childEnv) != "fallback" {
		t.Skip("a child of the fallback tests")
	}
	home := os.Getenv("HOME")
	if dir := os.Getenv(roHomeEnv); dir != "" {
		mountReadOnly(t, dir)
	}
	if err := os.Mkdir(filepath.Join(home, "probe"), 0o700); err == nil {
		t.Fatalf("setup: HOME (%s) is writable", home)
	}
	t.Run("one", func(t *testing.T) {
		got := append(registrytest.Ports(t, 3), registrytest.Port(t))
		got = append(got, registrytest.Listener(t).Addr().(*net.TCPAddr).Port)
		slices.Sort(got)
		if len(slices.Compact(got)) != 5 {
			t.Errorf("ports repeat: %v", got)
		}
	})
	t.Run("two", func(t *testing.T) {
		if a, b := registrytest.Port(t), registrytest.Port(t); a == b {
			t.Errorf("port %d twice", a)
		}
	})
}
