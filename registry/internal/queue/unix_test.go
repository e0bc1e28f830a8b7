//go:build linux

package queue

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portfor/portfor/internal/procinfo"
)

// With PORTFOR_QUEUE_TEST_DRAIN=DIR,GROUP the test binary drains the
// queue in DIR (shared with GROUP) and prints what it got, one payload a
// line; the tests start it as another user.
func TestMain(m *testing.M) {
	if arg := os.Getenv("PORTFOR_QUEUE_TEST_DRAIN"); arg != "" {
		dir, group, _ := strings.Cut(arg, ",")
		gid, _ := strconv.Atoi(group)
		items, err := New(Config{Dir: dir, FilePerm: 0o660, DirPerm: 0o770, Group: gid}).Drain(10)
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		for _, it := range items {
			os.Stdout.WriteString(string(it.Payload) + "\n")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Links, FIFOs, devices and huge files at request names make a drain
// neither follow, block nor read without end; they are removed.
func TestPlantedFilesAtRequestNamesAreNeverFollowed(t *testing.T) {
	q := newQueue(t)
	_, err := q.Enqueue(me(t), []byte("good"))
	require.NoError(t, err)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("SECRET\n"), 0o600))
	name := func(i uint32) string {
		return filepath.Join(q.cfg.Dir, Name{Time: time.Unix(0, 1), Asker: me(t), rand: i}.String())
	}
	require.NoError(t, os.Symlink(secret, name(1)))
	require.NoError(t, syscall.Mkfifo(name(2), 0o600))
	require.NoError(t, os.Symlink("/dev/zero", name(3)))
	require.NoError(t, os.WriteFile(name(4), make([]byte, MaxPayload+1), 0o600))

	done := make(chan []Item, 1)
	go func() {
		items, err := q.Drain(10)
		assert.NoError(t, err)
		done <- items
	}()
	select {
	case items := <-done:
		assert.Equal(t, []string{"good"}, payloads(items))
	case <-time.After(30 * time.Second):
		t.Fatal("a planted FIFO or device made the drain hang")
	}
	for i := range uint32(4) {
		assert.False(t, exists(t, name(i+1)), "planted file %d removed", i+1)
	}
	b, err := os.ReadFile(secret)
	require.NoError(t, err)
	assert.Equal(t, "SECRET\n", string(b))
}

// The pending directory replaced by a link (to another user's directory,
// or to /etc) is refused by every operation: nothing is read, written or
// removed there.
func TestALinkedPendingDirectoryIsRefused(t *testing.T) {
	q := newQueue(t)
	victim := t.TempDir()
	files := []string{"passwd", Name{Asker: gone(t), Time: time.Unix(0, 1)}.String(), "req-old"}
	for _, n := range files {
		require.NoError(t, os.WriteFile(filepath.Join(victim, n), []byte("x"), 0o600))
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(victim, n), old, old))
	}
	require.NoError(t, os.Symlink(victim, q.cfg.Dir))

	_, err := q.Drain(10)
	assert.ErrorContains(t, err, "not a directory")
	_, err = q.Scan()
	assert.ErrorContains(t, err, "not a directory")
	assert.Error(t, q.Remove(Entry{File: files[1], State: Abandoned}))
	_, err = q.Enqueue(me(t), []byte("x"))
	assert.Error(t, err)
	names, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Len(t, names, len(files), "the link's target is untouched")
}

func TestADirectoryOthersControlIsRefused(t *testing.T) {
	q := newQueue(t)
	require.NoError(t, os.Mkdir(q.cfg.Dir, 0o777))
	require.NoError(t, os.Chmod(q.cfg.Dir, 0o777))
	_, err := q.Drain(10)
	assert.ErrorContains(t, err, "writable by everyone")
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the directory to another user")
	}
	require.NoError(t, os.Chmod(q.cfg.Dir, 0o700))
	require.NoError(t, os.Chown(q.cfg.Dir, 65534, 65534))
	_, err = q.Drain(10)
	assert.ErrorContains(t, err, "belongs to uid 65534")
}

// In a shared registry the pending directory keeps the registry
// directory's group and setgid bit, so another member can read (and carry
// out) the requests; a request that member cannot read is left, not
// removed.
func TestASharedQueueWorksAcrossUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to act as two users of one group")
	}
	const group, alice, bob = 42420, 42421, 42422
	base := publicDir(t)
	bin := filepath.Join(base, "queue.test")
	b, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	shared := filepath.Join(base, "shared")
	require.NoError(t, os.Mkdir(shared, 0o770))
	require.NoError(t, os.Chown(shared, 0, group))
	require.NoError(t, os.Chmod(shared, 0o2770))
	dir := filepath.Join(shared, "registry.db.pending")

	as := func(uid int, env string) *exec.Cmd {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), env)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{group}}}
		return cmd
	}
	// Alice queues (as the registry would, through Enqueue) in a directory
	// she creates; her primary group is not the shared one.
	enq := as(alice, "PORTFOR_QUEUE_TEST_ENQUEUE="+dir+","+strconv.Itoa(group))
	out, err := enq.CombinedOutput()
	require.NoError(t, err, string(out))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o770)|os.ModeSetgid, fi.Mode()&(os.ModePerm|os.ModeSetgid), "mode %v", fi.Mode())
	assert.Equal(t, uint32(group), fi.Sys().(*syscall.Stat_t).Gid, "the shared group, not alice's own")

	// A request of bob's that alice may not read (as an older portfor
	// would have left it): she must leave it alone.
	unreadable := filepath.Join(dir, Name{Time: time.Unix(0, 1), Asker: me(t), rand: 9}.String())
	require.NoError(t, os.WriteFile(unreadable, []byte("bob's"), 0o600))
	require.NoError(t, os.Chown(unreadable, bob, bob))

	// Bob drains: he reads alice's request.
	out, err = as(bob, "PORTFOR_QUEUE_TEST_DRAIN="+dir+","+strconv.Itoa(group)).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "bob's\nalice's request\n", string(out), "oldest first")
	// Alice drains: she cannot read bob's, and leaves it.
	out, err = as(alice, "PORTFOR_QUEUE_TEST_DRAIN="+dir+","+strconv.Itoa(group)).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "alice's request\n", string(out))
	claimed, err := filepath.Glob(filepath.Join(dir, "c2-*-00000009"))
	require.NoError(t, err)
	assert.Len(t, claimed, 1, "an unreadable request is not removed (bob claimed it, alice left it)")
}

// publicDir is a temporary directory other users may enter (t.TempDir()'s
// parents are private), removed at the end of the test.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "portfor-queue-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func init() {
	if arg := os.Getenv("PORTFOR_QUEUE_TEST_ENQUEUE"); arg != "" {
		dir, group, _ := strings.Cut(arg, ",")
		gid, _ := strconv.Atoi(group)
		q := New(Config{Dir: dir, FilePerm: 0o660, DirPerm: 0o770, Group: gid})
		id, err := procinfo.Lookup(os.Getppid()) // the test, which outlives the drains
		if err != nil {
			os.Exit(1)
		}
		if _, err := q.Enqueue(id, []byte("alice's request")); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
}
