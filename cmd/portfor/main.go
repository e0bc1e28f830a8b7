// Command portfor hands out local TCP ports that stay put: `portfor NAME
// [PORT]` prints the port assigned to NAME, assigning one the first time.
// See `portfor --help` and the README for the other commands.
package main

import (
	"os"
)

func main() {
	ctx := newSignalContext()
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	ctx.stop()
	os.Exit(code)
}
