//go:build linux

package procinfo

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSelfIsAlive(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), me.PID)
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		assert.NotZero(t, me.Start)
	}
	ok, err := Alive(me)
	require.NoError(t, err)
	assert.True(t, ok)
	if runtime.GOOS == "linux" {
		assert.Contains(t, Command(os.Getpid()), "procinfo")
	}
}

func TestReusedPidIsNotAlive(t *testing.T) {
	me, err := Lookup(os.Getpid())
	require.NoError(t, err)
	if me.Start == 0 {
		t.Skip("no start times on " + runtime.GOOS)
	}
	// A process that took the pid later started later than the record says;
	// a record one tick late may come from a reader whose time namespace's
	// offset is not a whole number of ticks (see startMatches).
	for _, start := range []uint64{me.Start - 1, me.Start - 100, me.Start + 2} {
		ok, err := Alive(Identity{PID: me.PID, Start: start})
		require.NoError(t, err)
		assert.False(t, ok, "same pid, start %d instead of %d: another process", start, me.Start)
	}
}

func TestExitedChildIsNotAlive(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	require.NoError(t, cmd.Start())
	id, err := Lookup(cmd.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait())
	ok, err := Alive(id)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = Lookup(cmd.Process.Pid)
	assert.ErrorIs(t, err, ErrNoProcess)
}

func TestLookupRejectsBadPids(t *testing.T) {
	for _, pid := range []int{0, -1} {
		_, err := Lookup(pid)
		assert.ErrorIs(t, err, ErrNoProcess)
	}
	assert.Equal(t, "pid 5", Identity{PID: 5}.String())
	assert.Equal(t, "pid 5 (start 9)", Identity{PID: 5, Start: 9}.String())
}

func statLine(comm, state string, start string) string {
	f := make([]string, 50)
	for i := range f {
		f[i] = "0"
	}
	f[0] = state
	f[19] = start
	return "42 (" + comm + ") " + strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	for _, comm := range []string{"bash", "a b", "x) (y", ")", "(("} {
		got, err := parseStat([]byte(statLine(comm, "S", "123456")))
		require.NoError(t, err, comm)
		assert.Equal(t, uint64(123456), got, comm)
	}
	_, err := parseStat([]byte(statLine("dead", "Z", "5")))
	assert.ErrorIs(t, err, ErrNoProcess, "a zombie owns nothing")
	for _, bad := range []string{"", "42 bash S 1", "42 (x) S 1 2 3", statLine("x", "S", "nan")} {
		_, err := parseStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine("bash", "S", "99")))
	f.Add([]byte("1 (a) R"))
	f.Add([]byte(")))"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStat(b) // must not panic
	})
}

func TestSameMounts(t *testing.T) {
	assert.True(t, SameMounts(os.Getpid()))
	assert.False(t, SameMounts(0), "no process 0 in /proc")
	unshare, err := exec.LookPath("unshare")
	if os.Geteuid() != 0 || err != nil {
		t.Skip("a child in a mount namespace of its own needs root and unshare here")
	}
	cmd := exec.Command(unshare, "--mount", "sleep", "600")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	require.Eventually(t, func() bool { return Program(cmd.Process.Pid) == "sleep" }, 10*time.Second, 5*time.Millisecond)
	assert.False(t, SameMounts(cmd.Process.Pid))
}
