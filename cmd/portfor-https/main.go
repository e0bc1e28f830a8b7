// Command portfor-https waits until an https:// URL answers. portfor runs
// it for `portfor wait https://…`, so that portfor itself does not link
// crypto/tls, which would add about two milliseconds to every portfor call
// (see package github.com/portfor/portfor/registry/https and
// docs/benchmarks.md). Install it beside portfor:
//
//	go install github.com/portfor/portfor/cmd/...@latest
//
// It can be run by hand as well:
//
//	portfor-https [-t DURATION] [-insecure] [-status LIST] URL
//
// It exits 0 once URL answers with a status in LIST (below 400 by
// default), 1 when the time runs out or the wait fails, with one line on
// stderr, and 2 for bad arguments.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portfor/portfor/internal/oneline"
	"github.com/portfor/portfor/registry"
	_ "github.com/portfor/portfor/registry/https"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// The report lines of -report, one on stdout, read by portfor.
const (
	reportReady = "ready"
	reportLast  = "last " // the wait ended first; what it last saw follows
	reportError = "error "
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portfor-https", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("t", 30*time.Second, "give up after `DURATION`")
	deadline := fs.Int64("deadline", 0, "give up at this time, in Unix `nanoseconds` (instead of -t; set by portfor)")
	insecure := fs.Bool("insecure", false, "accept any certificate (do not verify it)")
	status := fs.String("status", "", "the `LIST` of statuses that mean ready, e.g. 200, 2xx,304 (default: below 400)")
	report := fs.Bool("report", false, "say how the wait ended in one line on stdout, for portfor")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: portfor-https [-t DURATION] [-insecure] [-status LIST] URL\n"+
			"Waits until a GET of URL answers below 400 (or with a status in LIST). Run by 'portfor wait https://…'.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "portfor-https: "+format+" (try 'portfor-https -h')\n", a...)
		return 2
	}
	if fs.NArg() != 1 {
		return usage("want one URL, got %d arguments", fs.NArg())
	}
	t, err := registry.ParseTarget(fs.Arg(0))
	if err != nil || t.Kind != registry.TargetHTTP {
		return usage("%q is not an http:// or https:// URL", fs.Arg(0))
	}
	var opts registry.WaitOptions
	opts.Insecure = *insecure
	if *status != "" {
		if opts.Status, err = registry.ParseStatus(*status); err != nil {
			return usage("%v", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	end := time.Now().Add(*timeout)
	if *deadline != 0 {
		end = time.Unix(0, *deadline)
	}
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	err = registry.WaitTarget(ctx, t, registry.StateOccupied, opts)

	var we *registry.TargetWaitError
	switch {
	case !*report:
	case err == nil:
		fmt.Fprintln(stdout, reportReady)
	case errors.As(err, &we):
		fmt.Fprintln(stdout, reportLast+oneLine(we.Last))
	default:
		fmt.Fprintln(stdout, reportError+oneLine(err.Error()))
	}
	if err != nil {
		if !*report {
			fmt.Fprintf(stderr, "portfor-https: %s\n", oneLine(err.Error()))
		}
		return 1
	}
	return 0
}

// oneLine keeps a message on one line, its control characters escaped,
// whatever a server or resolver put in it.
func oneLine(s string) string { return oneline.Clean(s) }
