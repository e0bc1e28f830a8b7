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

// command reads the arguments from kern.procargs2, which only the
// process's owner (or root) may read.
func command(pid int) string {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return ""
	}
	return parseProcArgs(b)
}

// program is the kernel's p_comm, at most 16 bytes.
func program(pid int) string {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp == nil || kp.Proc.P_pid == 0 {
		return ""
	}
	return unix.ByteSliceToString(kp.Proc.P_comm[:])
}

// dir asks lsof: macOS tells a process's working directory only through
// libproc (proc_pidinfo PROC_PIDVNODEPATHINFO), which needs cgo.
func dir(pid int) string { return dirLsof(pid) }

// sameMounts: macOS has no mount namespaces.
func sameMounts(int) bool { return true }

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
