// Command portfor hands out local TCP ports that stay put: `portfor NAME
// [PORT]` prints the port assigned to NAME, assigning one the first time.
// See `portfor --help` and the README for the other commands.
//
//go:debug updatemaxprocs=0
package main

// updatemaxprocs=0: the runtime's watch on the CPU quota (Go 1.25) would
// start a goroutine in every command, to change a GOMAXPROCS that
// internal/startup sets to 1.

import (
	"os"
	"runtime"
	"strconv"

	_ "github.com/portfor/portfor/cmd/portfor/internal/startup" // first: see its doc
)

func main() {
	// The user's choice over internal/startup's. (SetDefaultGOMAXPROCS
	// would not do: it ignores the variable.)
	if n, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && n > 0 {
		runtime.GOMAXPROCS(n)
	}
	ctx := newSignalContext()
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	ctx.stop()
	os.Exit(code)
}
