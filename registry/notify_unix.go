//go:build unix

package registry

import (
	"bufio"
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
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	wr, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
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

// notify writes ports to the FIFO at path, without blocking: a FIFO whose
// caller has gone (no reader) or that does not exist is skipped.
func notify(path string, ports []int) {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	f.WriteString(formatAnswer(ports)) // at most MaxLeaseN ports: under PIPE_BUF, one atomic write
	f.Close()
}

const noFollow = syscall.O_NOFOLLOW
