// Command portfor hands out local TCP ports that stay put: `portfor NAME
// [PORT]` prints the port assigned to NAME, assigning one the first time.
// See `portfor --help` and the README for the other commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
