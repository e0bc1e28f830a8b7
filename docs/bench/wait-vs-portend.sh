#!/usr/bin/env bash
# Compares portfor with portend (Debian python3-portend) as whole processes:
#  1. wait detection latency (listen() to the waiter's exit) and CPU while waiting
#     on a closed port, with internal/bench/waitlatency;
#  2. a one-shot check of a free port: `portfor check` against `python3 -m portend HOST:PORT free`.
# Needs: apt-get install python3-portend hyperfine.
# Usage: docs/bench/wait-vs-portend.sh [runs]   (from the repository root)
set -euo pipefail
runs=${1:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor" ./cmd/portfor

go run ./internal/bench/waitlatency -portfor "$work/portfor" -n "$runs" -idle 10s

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hyperfine -N --warmup 10 --runs 300 --export-json "$work/check.json" \
  "/usr/bin/python3 -m portend localhost:$port free" \
  "$work/portfor --db $work/registry.db check localhost:$port"
/usr/bin/python3 - "$work/check.json" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = [statistics.median(r["times"]) * 1000 for r in res]
print(f"check of a free port: portend median {med[0]:.2f} ms, portfor median {med[1]:.2f} ms, ratio {med[0] / med[1]:.1f}x")
PY
