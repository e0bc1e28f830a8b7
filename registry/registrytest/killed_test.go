package registrytest_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/registry/registrytest"
)

// A test binary killed before its cleanups run leaves its leases to
// portfor, which takes them back as for any process that has exited.
func TestLeasesOfAKilledTestBinaryAreReclaimed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	cmd := childTest(t.Context(), "TestKilledChild", "killed", []string{registry.EnvDB + "=" + db})
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var port int
	if _, err := fmt.Fscanf(stdout, "port %d\n", &port); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child said no port: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	reg, err := registry.Open(db, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := reg.Reclaim(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].Port != port || gone[0].OwnerPID != cmd.Process.Pid {
		t.Errorf("reclaimed %+v, want port %d of pid %d", gone, port, cmd.Process.Pid)
	}
}

// TestKilledChild leases a port, says which, and waits to be killed.
func TestKilledChild(t *testing.T) {
	if os.Getenv(childEnv) != "killed" {
		t.Skip("a child of TestLeasesOfAKilledTestBinaryAreReclaimed")
	}
	fmt.Printf("port %d\n", registrytest.Port(t))
	io.Copy(io.Discard, os.Stdin) // until killed (or the parent goes)
}
