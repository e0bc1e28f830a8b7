//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/portfor/portfor/internal/activation"
)

// execCommand puts CMD (path, argv) in portfor's place with the variables
// of set added to the environment and the sockets fds (close-on-exec, any
// numbers) as descriptors 3, 4, ...: the pid stays, so every signal sent
// to portfor's pid reaches CMD, and CMD's exit status is the shell's. It
// returns only when the exec fails. When the app does not write to the
// process's own standard streams (a test running it in-process) CMD runs
// as a child instead, without sockets.
func execCommand(c *cli.Context, path string, argv []string, set map[string]string, fds []int) error {
	return execWith(c.App.Writer, c.App.ErrWriter, path, argv, set, fds)
}

// execWith is execCommand for the app's standard streams stdout and stderr.
func execWith(stdout, stderr io.Writer, path string, argv []string, set map[string]string, fds []int) error {
	if stdout != os.Stdout || stderr != os.Stderr {
		if len(fds) > 0 {
			closeAll(fds)
			return errors.New("run --listen: CMD must take portfor's place, which an in-process run cannot give")
		}
		return runChild(path, argv, mergeEnv(os.Environ(), set), stdout, stderr)
	}
	if len(fds) > 0 {
		set[activation.EnvListenPID] = strconv.Itoa(os.Getpid()) // exec keeps it
	}
	env := mergeEnv(os.Environ(), set)
	// Signals portfor caught go back to what they were when it started
	// (an inherited SIG_IGN for SIGINT or SIGHUP included), which exec
	// then passes on to CMD.
	signal.Reset(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	path, argv, viaBash, err := handOver(fds, path, argv)
	if err != nil {
		return fmt.Errorf("run --listen: %w", err)
	}
	if viaBash {
		env = keepBashEnv(env)
	}
	err = syscall.Exec(path, argv, env)
	code, why := startFailure(err)
	fmt.Fprintf(stderr, "portfor: %s: %s\n", printable(argv[0]), why)
	return &exitError{code: code}
}

// reserved are descriptors of /dev/null that reserveFDs took, by number.
var reserved = map[int]bool{}

// reserveFDs keeps descriptors FirstFD to FirstFD+n-1, those that are
// free, for the sockets: it opens /dev/null (close-on-exec, by a raw
// system call) until it gets a descriptor past them. Called before
// portfor opens any file, it keeps the Go runtime's poller (its epoll and
// eventfd descriptors, made at the first file opened) out of the range
// that handOver overwrites.
func reserveFDs(n int) {
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		if fd >= activation.FirstFD+n {
			unix.Close(fd)
			return
		}
		reserved[fd] = true
	}
}

// handOver moves the sockets fds to descriptors FirstFD, FirstFD+1, ...,
// without close-on-exec there, and returns the argv and path to exec:
// path and argv themselves, or a shell that moves them. Each socket is
// first copied above the whole target range (close-on-exec), so that none
// is overwritten by another. A descriptor of the range may be the Go
// runtime's own: its cgroup files (Go 1.25+, regular files it only
// preads, harmlessly failing once overwritten) or its poller's, which it
// must keep until the exec (overwriting those could crash it). With one of
// those in the way, the sockets stay above the range, open across exec,
// and bash moves them into place and execs CMD.
func handOver(fds []int, path string, argv []string) (string, []string, bool, error) {
	n := len(fds)
	if n == 0 {
		return path, argv, false, nil
	}
	high := make([]int, 0, n)
	for _, fd := range fds {
		h, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, activation.FirstFD+n)
		if err != nil {
			return "", nil, false, fmt.Errorf("dup: %w", err)
		}
		unix.Close(fd)
		high = append(high, h)
	}
	direct := os.Getenv("PORTFOR_TEST_RUN_SHELL") == ""
	for i := range n {
		if !safeToOverwrite(activation.FirstFD + i) {
			direct = false
		}
	}
	if !direct {
		// dash, often /bin/sh, reads only one-digit descriptors.
		bash, err := exec.LookPath("bash")
		if err != nil {
			return "", nil, false, errors.New("a descriptor from 3 on is the Go runtime's own, and bash, which would move the sockets past it, is not installed")
		}
		script := ""
		for i, h := range high {
			if _, err := unix.FcntlInt(uintptr(h), unix.F_SETFD, 0); err != nil {
				return "", nil, false, fmt.Errorf("fcntl: %w", err)
			}
			script += fmt.Sprintf("exec %d<&%d %d<&- || exit 126; ", activation.FirstFD+i, h, h)
		}
		// CMD gets its own argv[0] (exec -a) and the caller's BASH_ENV,
		// which bash itself must not read (execWith hands it over as
		// PORTFOR_BASH_ENV).
		script += `if [ -n "${PORTFOR_BASH_ENV+x}" ]; then export BASH_ENV="$PORTFOR_BASH_ENV"; unset PORTFOR_BASH_ENV; fi; `
		return bash, append([]string{"bash", "-c", script + `p=$1; shift; exec -a "$0" "$p" "$@"`, argv[0], path}, argv[1:]...), true, nil
	}
	for i, h := range high {
		// dup2 clears close-on-exec on the new descriptor; the copy
		// above keeps it, and goes with the exec.
		if err := unix.Dup2(h, activation.FirstFD+i); err != nil {
			return "", nil, false, fmt.Errorf("dup2 %d to %d: %w", h, activation.FirstFD+i, err)
		}
	}
	return path, argv, false, nil
}

// safeToOverwrite reports whether descriptor fd may be replaced by a
// socket right before exec: it is closed, one of reserveFDs', inherited
// (not close-on-exec: meant for whatever portfor runs), or a regular
// file (the runtime's cgroup files).
func safeToOverwrite(fd int) bool {
	if reserved[fd] {
		return true
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		return true
	}
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
}

// bindSocket binds port on spec's address: a listening TCP socket, or a
// UDP one. The socket is blocking (as systemd passes them: the server
// chooses) and close-on-exec until handOver.
func bindSocket(spec *listenSpec, port int) (int, error) {
	var family int
	var sa unix.Sockaddr
	if spec.addr.Is6() {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: port, Addr: spec.addr.As16()}
	} else {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: spec.addr.As4()}
	}
	typ := unix.SOCK_STREAM
	if spec.udp {
		typ = unix.SOCK_DGRAM
	}
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, typ, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if !spec.udp {
		// As systemd and Go's own listeners do: a port whose last
		// connections linger in TIME_WAIT can be bound again. Not for
		// UDP, where it would let two sockets share the port.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("SO_REUSEADDR: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return -1, errors.New("in use by another process")
		}
		return -1, fmt.Errorf("bind: %w", err)
	}
	if !spec.udp {
		if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("listen: %w", err)
		}
	}
	return fd, nil
}

// closeAll closes the sockets fds.
func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// keepBashEnv moves BASH_ENV out of the way of the bash that hands the
// sockets over (it would read the file before CMD starts) into
// PORTFOR_BASH_ENV, which that bash puts back for CMD.
func keepBashEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BASH_ENV="); ok {
			out = append(out, "PORTFOR_BASH_ENV="+v)
			continue
		}
		out = append(out, kv)
	}
	return out
}
