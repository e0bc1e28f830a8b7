//go:build !unix

package registry

import "errors"

// answerPipe is not available here: waiters take the lock in turn.
type answerPipe struct{ ports chan []int }

func openAnswerPipe(string) (*answerPipe, error) { return nil, errors.ErrUnsupported }

func (*answerPipe) close() {}

func notify(string, []int) {}
