package procinfo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// timeRole runs the test binary in a time namespace whose boot time is
// 1000 s ahead (unshare -T --boottime 1000): see timeMember.
const timeRole = "timens"

// timeReport is what the time namespace's process tells the test.
type timeReport struct {
	Getpid      int
	Offsets     string   // its /proc/self/timens_offsets
	Self        Identity // Lookup(os.Getpid())
	Parent      Identity // Lookup of the test process
	ParentErr   string
	ParentAlive bool // Alive of the test process's own identity
}

// timeMember reports, then waits for a line on stdin and exits.
func timeMember() int {
	var r timeReport
	r.Getpid = os.Getpid()
	b, _ := os.ReadFile("/proc/self/timens_offsets")
	r.Offsets = string(b)
	r.Self, _ = Lookup(os.Getpid())
	var parent Identity
	if err := json.Unmarshal([]byte(os.Getenv(nsParentEnv)), &parent); err != nil {
		fmt.Printf("error: %s: %v\n", nsParentEnv, err)
		return 1
	}
	var err error
	r.Parent, err = Lookup(parent.PID)
	r.ParentErr = errString(err)
	r.ParentAlive, err = Alive(parent)
	r.ParentErr += errString(err)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// A process in a time namespace whose boot time is shifted reads every
// start time shifted: without normalising, each side takes the other for a
// process that reused the pid, and gc frees live leases.
func TestTimeNamespace(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	parent, err := json.Marshal(me)
	require.NoError(t, err)
	args := []string{"-T", "--boottime", "1000", "-f"}
	if os.Geteuid() != 0 {
		args = append([]string{"-U", "-r"}, args...)
	}
	cmd := exec.Command(unshare, append(args, os.Args[0], "-test.run=^$")...)
	cmd.Env = append(os.Environ(), nsRoleEnv+"="+timeRole, nsParentEnv+"="+string(parent), "GORACE=atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	w.Close()
	defer r.Close()
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	require.NoError(t, r.SetReadDeadline(time.Now().Add(30*time.Second)))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		stdin.Close()
		_ = cmd.Wait()
		t.Skipf("cannot make a time namespace here (%v): %s", err, stderr.String())
	}
	var rep timeReport
	require.NoError(t, json.Unmarshal([]byte(line), &rep), "child said %q", line)
	require.Contains(t, rep.Offsets, "1000", "the child's time namespace is shifted")

	assert.Empty(t, rep.ParentErr)
	assert.Equal(t, me, rep.Parent, "the test process seen from the shifted namespace")
	assert.True(t, rep.ParentAlive, "the test process is alive seen from the shifted namespace")

	seen, err := Lookup(rep.Getpid)
	require.NoError(t, err)
	assert.Equal(t, rep.Self, seen, "the shifted process seen from here, as it sees itself")
	alive, err := Alive(rep.Self)
	require.NoError(t, err)
	assert.True(t, alive, "a lease made in the shifted namespace is alive from here")
	alive, err = Alive(Identity{PID: rep.Self.PID, Start: rep.Self.Start - 2, NS: rep.Self.NS})
	require.NoError(t, err)
	assert.False(t, alive, "still no match for an earlier process with the pid")
}

func TestTimeBase(t *testing.T) {
	for _, tc := range []struct {
		in   string
		off  int64
		okay bool
	}{
		{"monotonic           0         0\nboottime         1000         0\n", 1000e9, true},
		{"boottime        -2 500000000\n", -1.5e9, true},
		{"7 3 5\n", 3e9 + 5, true},
		{"monotonic 1 0\n", 0, false},
		{"boottime x 0\n", 0, false},
		{"boottime 1 1000000000\n", 0, false},
	} {
		off, ok := parseBoottimeOffset([]byte(tc.in))
		assert.Equal(t, tc.okay, ok, "%q", tc.in)
		assert.Equal(t, tc.off, off, "%q", tc.in)
	}

	// Reads shifted by whole ticks normalise exactly, either way.
	tb := newTimeBase(100, 1000e9)
	assert.True(t, tb.exact)
	assert.Equal(t, uint64(500), tb.normalise(100500))
	tb = newTimeBase(100, -1.5e9)
	assert.True(t, tb.exact)
	assert.Equal(t, uint64(500), tb.normalise(350))
	// A sub-tick offset (+3 ms): a process started 8 ms into tick 500 reads
	// 501 after normalising, one started 2 ms in reads 500.
	tb = newTimeBase(100, 1000e9+3e6)
	assert.False(t, tb.exact)
	for _, startNS := range []uint64{5008e6, 5002e6} {
		read := (startNS + 1000e9 + 3e6) / 1e7
		n := tb.normalise(read)
		assert.True(t, n == 500 || n == 501, "%d", n)
	}
	assert.Equal(t, uint64(0), timeBase{}.normalise(12345), "unknown offset: no start time")
	assert.Equal(t, int64(100), clkTck())

	// One tick high on the record's side is always allowed (a later process
	// cannot have started earlier); on the reader's only when its own reads
	// may be high.
	assert.True(t, startMatches(500, 500))
	assert.True(t, startMatches(501, 500))
	assert.Equal(t, !timeView().exact, startMatches(500, 501))
	assert.False(t, startMatches(500, 502))
	assert.False(t, startMatches(503, 501))
}
