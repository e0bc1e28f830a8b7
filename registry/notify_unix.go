//go:build unix

package registry

import (
	"bufio"
	"fmt"
	"os"
	"syscall"
)

// answerPipe is the reading end of a request's FIFO. A second, writing
// descriptor is kept open so that reads wait for data instead of seeing
// end-of-file while no batch has the FIFO open.
type answerPipe struct {
	rd, wr *os.File
	ports  chan []int // receives the ports once, when a batch answers
}

func openAnswerPipe(path string, perm os.FileMode) (*answerPipe, error) {
	if err := syscall.Mkfifo(path, uint32(perm.Perm())); err != nil {
		return nil, err
	}
	if err := os.Chmod(path, perm); err != nil { // exactly, whatever the umask: the batch may be another user's
		os.Remove(path)
		return nil, err
	}
	rd, err := openFIFO(path, os.O_RDONLY, true)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	wr, err := openFIFO(path, os.O_WRONLY, true)
	if err != nil {
		rd.Close()
		os.Remove(path)
		return nil, err
	}
	p := &answerPipe{rd: rd, wr: wr, ports: make(chan []int, 1)}
	go func() {
		line, err := bufio.NewReader(rd).ReadString('\n')
		if err != nil {
			return // closed: the caller has gone on without it
		}
		if ports := parseAnswer(line); ports != nil {
			p.ports <- ports
		}
	}()
	return p, nil
}

func (p *answerPipe) close() {
	p.wr.Close()
	p.rd.Close() // ends the reading goroutine
}

// openFIFO opens path without following a link or blocking, and only if
// it is a FIFO (of this user's, unless others may be: a shared registry).
func openFIFO(path string, flag int, anyOwner bool) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode()&os.ModeNamedPipe == 0 {
		err = fmt.Errorf("%s is not a FIFO", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); err == nil && ok && !anyOwner && int(st.Uid) != os.Geteuid() {
		err = fmt.Errorf("%s belongs to uid %d", path, st.Uid)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// notify writes ports to the FIFO at path, without blocking: a FIFO whose
// caller has gone (no reader), or that is missing, is skipped, and so is
// anything that is not a FIFO (of this user's, unless shared): a batch
// never writes through a link someone put there.
func notify(path string, ports []int, shared bool) {
	f, err := openFIFO(path, os.O_WRONLY, shared)
	if err != nil {
		return
	}
	f.WriteString(formatAnswer(ports)) // at most MaxLeaseN ports: under PIPE_BUF, one atomic write
	f.Close()
}
