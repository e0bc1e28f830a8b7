// Package startup trims what the Go runtime costs a portfor command before
// its first line runs. It has no API: cmd/portfor imports it for its
// init, which runs before almost every other package is initialised (it
// imports only package runtime, and Go initialises the packages whose
// imports are ready in the order of their paths).
//
// A portfor command lives for milliseconds, and on a virtual machine most
// of that is page faults: every page of heap, stack or data a process
// touches first costs a fault, 30-40 µs each on the machine of
// docs/benchmarks.md. Two things here touch fewer of them:
//
//   - One P (GOMAXPROCS=1). portfor's commands wait on system calls and
//     sockets, not on CPUs; a second P brings its own allocation caches
//     (a fresh span, so a fresh page, for each size class the command
//     uses) and a second thread. main gives $GOMAXPROCS, when set, the
//     last word. (Reading the environment here, through package syscall,
//     would run this after the packages syscall needs, and the faults it
//     saves would be spent already: 325 pages instead of 264.)
//   - The main goroutine's stack grown once, at the start, to the size the
//     deepest commands reach, instead of doubling from 8 KiB four times,
//     each time copying the stack and reading the unwinding tables of
//     every frame on it.
//
// `portfor svc` (a known name) touched 304 pages before and 263 after;
// docs/benchmarks.md has the timings.
package startup

import "runtime"

func init() {
	runtime.GOMAXPROCS(1)
	growStack()
}

// stackWanted is the stack the deepest commands use, rounded up: the
// runtime grows the stack to the next power of two that holds it, 32 KiB.
const stackWanted = 24 << 10

// growStack needs a frame of stackWanted bytes, so the runtime grows the
// main goroutine's stack in one step while it holds only a few frames.
//
//go:noinline
func growStack() byte {
	var b [stackWanted]byte
	return last(b[:])
}

// last keeps b alive, so the compiler keeps growStack's frame.
//
//go:noinline
func last(b []byte) byte { return b[len(b)-1] }
