// Package activation speaks the two halves of systemd's service protocol a
// server needs, without linking libsystemd or adding a dependency:
//
//   - socket activation (sd_listen_fds(3)): the service manager opens the
//     listening sockets and starts the server with them as file descriptors
//     3, 4, ... and the environment LISTEN_PID (the pid they are meant for),
//     LISTEN_FDS (how many) and LISTEN_FDNAMES (their names, colon
//     separated). Files reads that, once, and unsets the variables so that
//     children do not take sockets that are not theirs, as
//     sd_listen_fds(unset_environment=1) does;
//   - readiness notification (sd_notify(3)): a datagram such as "READY=1" or
//     "STOPPING=1" sent to the Unix socket named by NOTIFY_SOCKET (a path,
//     or @name for Linux's abstract namespace). Notify sends one.
//
// The same protocol serves any parent that hands sockets to a child, not
// only systemd: `systemd-socket-activate`, or a supervisor of its own. A
// parent written in Go cannot know its child's pid before the child runs,
// so it starts the child through a shell that sets LISTEN_PID=$$ and execs
// (the pid survives the exec), as the tests of this package do.
//
// On systems without Unix file descriptors (Windows) the protocol does not
// exist: Files and Notify return an error wrapping errors.ErrUnsupported
// when the environment asks for them, and nothing otherwise.
package activation

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The environment of the protocol.
const (
	EnvListenPID     = "LISTEN_PID"
	EnvListenFDs     = "LISTEN_FDS"
	EnvListenFDNames = "LISTEN_FDNAMES"
	EnvNotifySocket  = "NOTIFY_SOCKET"
)

// FirstFD is the first file descriptor passed (SD_LISTEN_FDS_START).
const FirstFD = 3

// MaxFDs bounds LISTEN_FDS: more is taken for a corrupt environment rather
// than tried one descriptor at a time.
const MaxFDs = 1 << 16

// UnknownName is the name of a descriptor when LISTEN_FDNAMES is not set,
// as sd_listen_fds_with_names(3) reports it.
const UnknownName = "unknown"

// ErrEnv is wrapped by the errors for an environment that breaks the
// protocol (a LISTEN_FDS that is not a count, names that do not match it).
var ErrEnv = errors.New("bad socket-activation environment")

// Parse reads the values of LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES for
// the process pid and returns the names of the descriptors passed to it,
// in order from FirstFD: nil when nothing is meant for pid (LISTEN_PID is
// unset, or another process's, as after a fork). Unnamed descriptors are
// called UnknownName. It only parses: it touches no descriptor and no
// environment.
func Parse(listenPID, listenFDs, listenFDNames string, pid int) ([]string, error) {
	if listenPID == "" {
		return nil, nil
	}
	p, err := strconv.Atoi(listenPID)
	if err != nil || p <= 0 {
		return nil, fmt.Errorf("%w: %s=%q: not a pid", ErrEnv, EnvListenPID, listenPID)
	}
	if p != pid {
		return nil, nil
	}
	if listenFDs == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(listenFDs)
	if err != nil || n < 0 || n > MaxFDs {
		return nil, fmt.Errorf("%w: %s=%q: want a count from 0 to %d", ErrEnv, EnvListenFDs, listenFDs, MaxFDs)
	}
	if n == 0 {
		return nil, nil
	}
	names := make([]string, n)
	if listenFDNames == "" {
		for i := range names {
			names[i] = UnknownName
		}
		return names, nil
	}
	given := strings.Split(listenFDNames, ":")
	if len(given) != n {
		return nil, fmt.Errorf("%w: %s=%q names %d descriptors, %s=%d", ErrEnv, EnvListenFDNames, listenFDNames, len(given), EnvListenFDs, n)
	}
	for i, name := range given {
		if !validName(name) {
			return nil, fmt.Errorf("%w: %s: name %d (%q): want 1 to 255 printable ASCII characters", ErrEnv, EnvListenFDNames, i+1, name)
		}
		names[i] = name
	}
	return names, nil
}

// validName is systemd's fdname_is_valid: 1 to 255 printable ASCII
// characters (':' cannot occur: it separates the names).
func validName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// unsetListenEnv removes the socket-activation variables from the
// environment, so that children do not take the descriptors for theirs.
func unsetListenEnv() {
	for _, k := range []string{EnvListenPID, EnvListenFDs, EnvListenFDNames} {
		_ = os.Unsetenv(k)
	}
}

// Files returns the descriptors passed to this process, in order from
// FirstFD, each named (File.Name) by LISTEN_FDNAMES, or UnknownName. It
// returns none when nothing was passed. The environment is consumed: the
// LISTEN_* variables are unset (whether or not they were meant for this
// process, as sd_listen_fds(1) does), so a second call returns none; the
// files are the caller's to close. They are marked close-on-exec, so a
// child started later receives them only if handed them explicitly
// (exec.Cmd.ExtraFiles).
func Files() ([]*os.File, error) {
	names, err := Parse(os.Getenv(EnvListenPID), os.Getenv(EnvListenFDs), os.Getenv(EnvListenFDNames), os.Getpid())
	unsetListenEnv()
	if err != nil || names == nil {
		return nil, err
	}
	return files(names)
}

// Pick returns the file named name among files, or the only file when
// there is one (whatever its name: a single socket needs no name). The
// other files are closed. It fails, closing them all, when several were
// passed and none, or more than one, is named name.
func Pick(files []*os.File, name string) (*os.File, error) {
	if len(files) == 0 {
		return nil, errors.New("no socket passed")
	}
	pick := -1
	if len(files) == 1 {
		pick = 0
	} else {
		var names []string
		for i, f := range files {
			names = append(names, f.Name())
			if f.Name() == name {
				if pick >= 0 {
					pick = -2
					break
				}
				pick = i
			}
		}
		if pick < 0 {
			for _, f := range files {
				f.Close()
			}
			what := "none is"
			if pick == -2 {
				what = "more than one is"
			}
			return nil, fmt.Errorf("%d sockets passed (%s=%s) and %s named %q", len(files), EnvListenFDNames, strings.Join(names, ":"), what, name)
		}
	}
	for i, f := range files {
		if i != pick {
			f.Close()
		}
	}
	return files[pick], nil
}
