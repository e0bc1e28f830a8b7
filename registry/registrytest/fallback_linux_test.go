package registrytest_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// readOnlyMount has the child run in a mount namespace of its own (Go
// makes its mounts private, as unshare(1) does), where it mounts dir
// read-only over itself (see mountReadOnly) before its test: nothing is
// mounted where the parent or anyone else sees it, and the mount goes
// with the child. It skips where mount namespaces cannot be made.
func readOnlyMount(t *testing.T, dir string) func(*exec.Cmd) {
	t.Helper()
	adjust := func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		cmd.Env = append(cmd.Env, roHomeEnv+"="+dir)
	}
	probe := exec.Command(os.Args[0], "-test.run=^$")
	adjust(probe)
	if err := probe.Run(); err != nil {
		t.Skipf("no mount namespace for a child here: %v", err)
	}
	return adjust
}

// mountReadOnly mounts dir read-only over itself, in the child's own mount
// namespace (see readOnlyMount).
func mountReadOnly(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s: %v", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dir, err)
	}
}
