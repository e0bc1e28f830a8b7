#!/usr/bin/env bash
# Times the whole `portfor NAME` process for a known name against Debian's
# `port-for NAME`, side by side in one hyperfine run, and prints the medians
# and their ratio. Needs: apt-get install python3-port-for hyperfine.
# port-for keeps its state in /etc/port-for.conf: it is backed up and restored.
# With a git ref as second argument, the release build of that commit runs in
# the same hyperfine run, so a change is measured against what it changed.
# Usage: docs/bench/cli-vs-port-for.sh [runs] [base-ref]   (from the repository root)
set -euo pipefail
runs=${1:-500}
base=${2:-}
work=$(mktemp -d)
conf=/etc/port-for.conf
had_conf=0
if [ -e "$conf" ]; then cp -a "$conf" "$work/port-for.conf.bak"; had_conf=1; fi
restore() {
  if [ "$had_conf" = 1 ]; then cp -a "$work/port-for.conf.bak" "$conf"; else rm -f "$conf"; fi
  if [ -d "$work/base" ]; then git worktree remove --force "$work/base"; fi
  rm -rf "$work"
}
trap restore EXIT

# The default build, and the release build (static, no urfave/cli doc generators, stripped).
go build -o "$work/portfor-default" ./cmd/portfor
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor" ./cmd/portfor

if [ -n "$base" ]; then
  git worktree add --quiet --detach "$work/base" "$base"
  (cd "$work/base" && CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor-base" ./cmd/portfor &&
    go build -o "$work/portfor-base-default" ./cmd/portfor)
fi

db="$work/registry.db"
port-for bench-svc >/dev/null
"$work/portfor" --db "$db" bench-svc >/dev/null

cmds=('port-for bench-svc' "$work/portfor --db $db bench-svc" "$work/portfor-default --db $db bench-svc")
if [ -n "$base" ]; then cmds+=("$work/portfor-base --db $db bench-svc" "$work/portfor-base-default --db $db bench-svc"); fi
hyperfine -N --warmup 30 --runs "$runs" --export-json "$work/result.json" "${cmds[@]}"

/usr/bin/python3 - "$work/result.json" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = [statistics.median(r["times"]) * 1000 for r in res]
names = ["port-for", "portfor (release build)", "portfor (default build)", "portfor at base (release)", "portfor at base (default)"]
for n, m in zip(names, med):
    print(f"{n:26s} median {m:7.2f} ms")
print(f"ratio port-for / portfor release: {med[0] / med[1]:.1f}x; default: {med[0] / med[2]:.1f}x")
if len(med) > 4:
    print(f"release build now / at base: {med[1] / med[3]:.3f}; default build now / at base: {med[2] / med[4]:.3f}")
PY
