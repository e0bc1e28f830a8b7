//go:build unix

package activation_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/activation"
)

func TestPick(t *testing.T) {
	// Pick only reads names and closes: files on /dev/null do.
	open := func(names ...string) []*os.File {
		var fs []*os.File
		for _, n := range names {
			fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			require.NoError(t, err)
			fs = append(fs, os.NewFile(uintptr(fd), n))
		}
		return fs
	}
	f, err := activation.Pick(open("whatever"), "portfor")
	require.NoError(t, err)
	assert.Equal(t, "whatever", f.Name(), "a single socket needs no name")
	f.Close()

	fs := open("a", "portfor", "b")
	f, err = activation.Pick(fs, "portfor")
	require.NoError(t, err)
	assert.Same(t, fs[1], f)
	assert.ErrorIs(t, fs[0].Close(), os.ErrClosed, "the others are closed")
	f.Close()

	_, err = activation.Pick(open("a", "b"), "portfor")
	assert.EqualError(t, err, `2 sockets passed (LISTEN_FDNAMES=a:b) and none is named "portfor"`)
	_, err = activation.Pick(open("portfor", "portfor"), "portfor")
	assert.EqualError(t, err, `2 sockets passed (LISTEN_FDNAMES=portfor:portfor) and more than one is named "portfor"`)
	_, err = activation.Pick(nil, "portfor")
	assert.Error(t, err)
}
