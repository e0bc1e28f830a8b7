package procinfo

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

func lookupProc(pid int) (Identity, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp == nil || kp.Proc.P_pid == 0 {
		if err == nil || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT) {
			return Identity{}, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
		}
		return Identity{}, fmt.Errorf("process %d: %w", pid, err)
	}
	tv := kp.Proc.P_starttime
	return Identity{PID: pid, Start: uint64(tv.Sec)*1e6 + uint64(tv.Usec)}, nil
}

func command(int) string { return "" }

func program(int) string { return "" }

func dir(int) string { return "" }

func bootID() string {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec)
}

func owner(pid int) (int, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp == nil || kp.Proc.P_pid == 0 {
		return 0, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return int(kp.Eproc.Ucred.Uid), nil
}

func parent(pid int) (int, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp == nil || kp.Proc.P_pid == 0 {
		return 0, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	return int(kp.Eproc.Ppid), nil
}

// startMatches: start times are read the same way by every process here.
func startMatches(recorded, read uint64) bool { return recorded == read }
