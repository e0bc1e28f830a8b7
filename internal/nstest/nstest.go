// Package nstest runs a test in namespaces of its own, for the tests that
// signal the processes holding a port: run where other tests run, as root,
// they would signal those tests' processes too whenever one of them holds
// a socket with the same port number (another protocol or address family
// on a port the kernel picked, which nothing keeps apart).
package nstest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// env is set, to "net" or "net+pid", in the test binary Run runs.
const env = "PORTFOR_TEST_NS"

// Options say which namespaces Run makes besides the network namespace.
type Options struct {
	// PID: a pid namespace with a /proc of its own (unshare --pid --fork
	// --mount-proc), whose pid allocation the test may steer
	// (/proc/sys/kernel/ns_last_pid) without touching that of other
	// tests' processes. The test binary is its pid 1, so that all its
	// processes end with it.
	PID bool
}

// Run runs the calling test (t, a top-level test) again, alone, in the test
// binary, in a network namespace of its own with its loopback up (unshare
// --net, and --user --map-root-user without root), and fails t if it fails
// there; Run then reports true, and the caller returns. In the namespaces
// Run made, and where they cannot be made (no unshare, or not allowed), it
// reports false: the test runs where it is.
func Run(t *testing.T, opts Options) bool {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("loopback of the test's network namespace: %v", err)
		}
		return false
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Log("no unshare (util-linux): the test runs among the others")
		return false
	}
	args, v := []string{"--net"}, "net"
	if opts.PID {
		args, v = append(args, "--pid", "--fork", "--mount-proc"), "net+pid"
	}
	if os.Geteuid() != 0 {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	if out, err := exec.Command(unshare, append(args, "true")...).CombinedOutput(); err != nil {
		t.Logf("no namespaces of its own here (%v: %s): the test runs among the others", err, strings.TrimSpace(string(out)))
		return false
	}
	cmd := exec.Command(unshare, append(args, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")...)
	cmd.Env = append(os.Environ(), env+"="+v, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	t.Logf("in namespaces of its own (%s):\n%s", v, out)
	require.NoError(t, err, "the test failed in its namespaces")
	return true
}

// PID reports whether this test binary runs in the pid namespace Run made
// for it.
func PID() bool { return os.Getenv(env) == "net+pid" }
