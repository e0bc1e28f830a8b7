#!/usr/bin/env bash
# Times `portfor who PORT` and `portfor list` (100 names, each port listened
# on) as whole processes, side by side in one hyperfine run with
# `ss -ltnp`, `ss -ltnp sport = :PORT` and `lsof -i :PORT` on the same
# sockets, and a Go program that does nothing (the floor of any Go
# process here). One Python process listens on the 100 ports on 127.0.0.1.
# portfor is the release build, as the README installs it. Medians, and
# ratios to ss -ltnp and lsof, are printed at the end.
# Needs: go, hyperfine, ss (iproute2), lsof, python3.
# Usage: docs/bench/who-vs-ss-lsof.sh [runs]   (from the repository root)
set -euo pipefail
runs=${1:-300}
work=$(mktemp -d)
holder=
trap '[ -n "$holder" ] && kill "$holder" 2>/dev/null; rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor" ./cmd/portfor
printf 'package main\n\nfunc main() {}\n' >"$work/nop.go"
(cd "$work" && go mod init nop >/dev/null 2>&1 && go build -trimpath -ldflags='-s -w' -o nop nop.go)
export PORTFOR_DB="$work/registry.db"
names=()
for i in $(seq -w 1 100); do names+=("svc-$i"); done
"$work/portfor" forward "${names[@]}" >"$work/ports"
/usr/bin/python3 - "$work" <<'PY' &
import socket, sys, time, os
w = sys.argv[1]
socks = []
for p in open(w + "/ports").read().split():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(p)))
    s.listen()
    socks.append(s)
open(w + "/ready", "w").close()
while True:
    time.sleep(60)
PY
holder=$!
for _ in $(seq 1 500); do [ -e "$work/ready" ] && break; sleep 0.01; done
[ -e "$work/ready" ] || { echo "the listeners did not start" >&2; exit 1; }
port=$(sed -n 42p "$work/ports")
up=$("$work/portfor" list --up | tail -n +2 | wc -l)
[ "$up" = 100 ] || { echo "list --up shows $up names, want 100" >&2; exit 1; }
echo "$(ls /proc | grep -c '^[0-9]') processes; port $port"
hyperfine -N -w 20 -r "$runs" --export-json "$work/times.json" \
  -n "portfor who $port" "$work/portfor who $port" \
  -n "ss -ltnp" "ss -ltnp" \
  -n "ss -ltnp sport = :$port" "ss -ltnp sport = :$port" \
  -n "lsof -i :$port" "lsof -i :$port" \
  -n "portfor list (100 names, all up)" "$work/portfor list" \
  -n "portfor svc-042 (the hit)" "$work/portfor svc-042" \
  -n "Go program doing nothing" "$work/nop"
/usr/bin/python3 - "$work/times.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
ss = next(r["median"] for r in rs if r["command"] == "ss -ltnp")
lsof = next(r["median"] for r in rs if r["command"].startswith("lsof"))
for r in rs:
    m = r["median"]
    print(f"{r['command']:36s} median {m * 1000:6.2f} ms   /ss -ltnp {m / ss:5.2f}   lsof/this {lsof / m:5.2f}")
PY
