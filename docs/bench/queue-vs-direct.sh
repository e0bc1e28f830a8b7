#!/usr/bin/env bash
# What the cross-process queue buys, before and after its reshaping, from one
# run: builds the registry test binary of the old queue (commit 84bccfc, FIFOs,
# answer files, leases queued) and of the current checkout, then runs
# Processes16x50 and LeaseProcesses16x50 (each with its queue and direct
# sub-benchmarks) from the two binaries in turn, ROUNDS times, and prints the
# median of each figure. The machine is shared: alternating the binaries
# spreads its noise over both.
# Columns: path is queue (shipped) or direct (no queue); queue is old (FIFOs,
# answers, leases queued) or new (this checkout).
# Usage: docs/bench/queue-vs-direct.sh [rounds] [benchtime]   (from the repository root)
set -euo pipefail
rounds=${1:-3}
benchtime=${2:-5x}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/old" 84bccfc >/dev/null 2>&1
(cd "$work/old" && go test -c -o "$work/old.test" ./registry)
go test -c -o "$work/new.test" ./registry
for i in $(seq "$rounds"); do
  for v in old new; do
    (cd "$work" && "./$v.test" -test.run '^$' -test.bench 'Processes16x50' -test.benchtime "$benchtime") |
      grep '^Benchmark' | sed "s/^/$v /"
  done
done >"$work/results"
/usr/bin/python3 - "$work/results" <<'PY'
import collections, re, statistics, sys
rows = collections.defaultdict(list)
pat = re.compile(r"^(\w+) Benchmark(\w+)/(\w+)-\d+\s+\d+\s+\d+ ns/op\s+([\d.]+) assignments/s\s+([\d.]+) p50-ms\s+([\d.]+) p99-ms")
for line in open(sys.argv[1]):
    m = pat.match(line)
    if m:
        v, bench, mode = m.group(1, 2, 3)
        rows[(bench, mode, v)].append(tuple(float(x) for x in m.group(4, 5, 6)))
print(f"{'benchmark':22s} {'path':7s} {'queue':5s} {'assign/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s}  runs")
for (bench, mode, v), r in sorted(rows.items()):
    med = [statistics.median(x[i] for x in r) for i in range(3)]
    print(f"{bench:22s} {mode:7s} {v:5s} {med[0]:9.0f} {med[1]:7.1f} {med[2]:7.1f}  {len(r)}")
PY
