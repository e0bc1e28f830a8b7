package nstest

import (
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test's own namespaces: a port held out here is free in there, and
// with PID the test binary is pid 1 there.
func TestRunIsolates(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("namespaces are Linux's")
	}
	const portEnv = "PORTFOR_TEST_NS_HELD"
	held := os.Getenv(portEnv)
	if held == "" {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		_, held, _ = net.SplitHostPort(l.Addr().String())
		t.Setenv(portEnv, held)
	}
	for _, pid := range []bool{false, true} {
		inside := os.Getenv(env) != ""
		if inside && pid != PID() {
			continue
		}
		if Run(t, Options{PID: pid}) {
			continue
		}
		if !inside {
			t.Skip("no namespaces of its own here")
		}
		l, err := net.Listen("tcp4", "127.0.0.1:"+held)
		require.NoError(t, err, "the port held outside is free inside")
		defer l.Close()
		c, err := net.Dial("tcp4", l.Addr().String())
		require.NoError(t, err, "the loopback is up")
		c.Close()
		assert.Equal(t, pid, os.Getpid() == 1, "pid 1 of a pid namespace of its own")
	}
}
