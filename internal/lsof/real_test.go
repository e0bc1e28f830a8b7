//go:build unix

package lsof_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/portfor/portfor/internal/lsof"
	"github.com/portfor/portfor/internal/lsof/lsoftest"
)

// TestRunReal runs the real lsof, where installed: a process that does not
// exist is "nothing found", not an error; this process's working directory
// is found.
func TestRunReal(t *testing.T) {
	lsoftest.Need(t)
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := strconv.Itoa(cmd.Process.Pid) // exited and reaped
	out, err := lsof.Run(context.Background(), "-w", "-a", "-p", gone, "-d", "cwd", "-F", "fn")
	if err != nil || len(out) != 0 {
		t.Errorf("lsof of exited pid %s: %q, %v; want nothing, no error", gone, out, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	out, err = lsof.Run(context.Background(), "-w", "-a", "-p", strconv.Itoa(os.Getpid()), "-d", "cwd", "-F", "fn")
	if err != nil || !strings.Contains(string(out), "\nn"+wd+"\n") {
		t.Errorf("lsof of this process's cwd: %q, %v; want n%s", out, err, wd)
	}
	if _, err := lsof.Run(context.Background(), "-w", "--no-such-option"); err == nil {
		t.Error("lsof with a bad option: no error")
	}
}
