//go:build darwin || linux

package procinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/portfor/portfor/internal/lsof/lsoftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCwd(t *testing.T) {
	for _, c := range []struct {
		out, path string
		ino       uint64
	}{
		{"p42\nfcwd\ni1234\nn/home/ana/src\n", "/home/ana/src", 1234},
		{"p42\nftxt\ni9\nn/bin/x\nfcwd\ni77\nn/a b\n", "/a b", 77},
		{"p42\nfcwd\nn/x\ni5\n", "/x", 5},
	} {
		path, ino, ok := parseCwd([]byte(c.out))
		assert.True(t, ok, c.out)
		assert.Equal(t, c.path, path, c.out)
		assert.Equal(t, c.ino, ino, c.out)
	}
	for _, bad := range []string{"", "p42\n", "p42\nfcwd\nn/x\n", "p42\nfcwd\nix\nn/x\n", "p42\nfcwd\ni5\nnx\n", "p42\nftxt\ni5\nn/x\n", "p42\nfcwd\ni5\nn\n", "fcwd\ni5\np43\nn/x\n"} {
		_, _, ok := parseCwd([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
}

// startIn starts a process in dir that lives until the test ends.
func startIn(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command("cat")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestDirLsof runs the real lsof: a process's working directory, one with
// a space in its name, and one with a newline, which lsof escapes, so the
// answer may be "" but never another path.
func TestDirLsof(t *testing.T) {
	lsoftest.Need(t)
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	for _, name := range []string{"plain", "with space", "new\nline"} {
		d := filepath.Join(root, name)
		require.NoError(t, os.Mkdir(d, 0o700))
		got := dirLsof(startIn(t, d))
		if name == "new\nline" && got == "" {
			continue
		}
		assert.Equal(t, d, got, "%q", name)
	}
	me := dirLsof(os.Getpid())
	assert.NotEmpty(t, me)
	assert.Equal(t, dir(os.Getpid()), me, "lsof and the system's own answer for this process")

	cmd := exec.Command("sh", "-c", "exit 0")
	require.NoError(t, cmd.Run())
	assert.Empty(t, dirLsof(cmd.Process.Pid), "an exited process")
	assert.Empty(t, dirLsof(0))
}
