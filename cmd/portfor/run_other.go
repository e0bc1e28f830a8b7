//go:build !unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// execCommand runs CMD (path, argv) as a child with the variables of set
// added to the environment, passing on the signals it can, and returns
// its status: this system has no exec that keeps the process. Sockets
// cannot be handed over here.
func execCommand(c *cli.Context, path string, argv []string, set map[string]string, fds []int) error {
	return execWith(c.App.Writer, c.App.ErrWriter, path, argv, set, fds)
}

// execWith is execCommand for the app's standard streams stdout and stderr.
func execWith(stdout, stderr io.Writer, path string, argv []string, set map[string]string, fds []int) error {
	if len(fds) > 0 {
		return errors.New("run --listen: socket hand-over needs Unix file descriptors")
	}
	return runChild(path, argv, mergeEnv(os.Environ(), set), stdout, stderr)
}

// bindSocket is not available without Unix file descriptors.
func bindSocket(spec *listenSpec, port int) (int, error) {
	return -1, fmt.Errorf("%w: socket hand-over needs Unix file descriptors", errors.ErrUnsupported)
}

// reserveFDs has nothing to reserve here.
func reserveFDs(int) {}

// closeAll has nothing to close here.
func closeAll([]int) {}
