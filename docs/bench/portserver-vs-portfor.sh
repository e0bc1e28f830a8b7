#!/usr/bin/env bash
# Runs the same client load against Debian's portserver (python3-portpicker)
# and `portfor serve`, one after the other, each on an abstract Unix socket
# with the default pool 15000-24999, and prints requests/s, latency and
# duplicates for 1 and for 16 concurrent clients (internal/bench/portserverload).
# Needs: apt-get install python3-portpicker.
# Usage: docs/bench/portserver-vs-portfor.sh [requests per client]   (from the repository root)
set -euo pipefail
n=${1:-300}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor" ./cmd/portfor
go build -o "$work/load" ./internal/bench/portserverload
tag=$$
/usr/bin/portserver --portserver_address "@bench-portserver-$tag" 2>"$work/portserver.log" & pids+=($!)
"$work/portfor" --db "$work/registry.db" serve --address "@bench-portfor-$tag" 2>"$work/portfor.log" & pids+=($!)
# Wait until both answer (a bounded loop; the load tool exits non-zero until then).
for addr in "@bench-portserver-$tag" "@bench-portfor-$tag"; do
  for _ in $(seq 100); do "$work/load" -address "$addr" -c 1 -n 1 >/dev/null 2>&1 && break; sleep 0.05; done
done
for round in 1 2 3; do
  for addr in "@bench-portserver-$tag" "@bench-portfor-$tag"; do
    "$work/load" -address "$addr" -c 1 -n "$n"
  done
done
for round in 1 2 3; do
  for addr in "@bench-portserver-$tag" "@bench-portfor-$tag"; do
    "$work/load" -address "$addr" -c 16 -n "$n"
  done
done
