#!/usr/bin/env bash
# What the cross-process queue buys, before and after its reshaping, from one
# run: builds the registry test binary of the old queue (commit 84bccfc, FIFOs,
# answer files, leases queued) and of the current checkout, then runs
# Processes16x50 and LeaseProcesses16x50 (each with its queue and direct
# sub-benchmarks) from the two binaries in turn, ROUNDS times, and prints the
# median of each figure. The machine is shared: alternating the binaries
# spreads its noise over both.
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
      sed -n "s/^Benchmark\([A-Za-z0-9]*\)\/\([a-z]*\)-[0-9]* .* \([0-9.]*\) assignments\/s *\([0-9.]*\) p50-ms *\([0-9.]*\) p99-ms.*/$v \1 \2 \3 \4 \5/p"
  done
done >"$work/results"
/usr/bin/python3 - "$work/results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, bench, mode, rate, p50, p99 = line.split()
    rows[(bench, mode, v)].append((float(rate), float(p50), float(p99)))
print(f"{'benchmark':22s} {'mode':7s} {'queue':5s} {'assign/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s}  runs")
for (bench, mode, v), r in sorted(rows.items()):
    med = [statistics.median(x[i] for x in r) for i in range(3)]
    print(f"{bench:22s} {mode:7s} {v:5s} {med[0]:9.0f} {med[1]:7.1f} {med[2]:7.1f}  {len(r)}")
PY
