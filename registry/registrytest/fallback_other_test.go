//go:build !linux

package registrytest_test

import (
	"os/exec"
	"testing"
)

// readOnlyMount needs Linux's mount namespaces.
func readOnlyMount(t *testing.T, _ string) func(*exec.Cmd) {
	t.Skip("a read-only directory for root needs a mount namespace (Linux)")
	return nil
}

// mountReadOnly is never asked for here.
func mountReadOnly(t *testing.T, dir string) { t.Fatalf("cannot mount %s read-only here", dir) }
