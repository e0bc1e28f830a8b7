#!/usr/bin/env bash
# Measures what `portfor run NAME -- CMD` costs before CMD's first
# instruction: `portfor run web -- nop` against the hit `portfor web`, where
# nop is a static program whose first instruction is exit(0) (built with
# gcc -nostdlib, so it has no loader or libc start-up of its own). The
# commands alternate run by run (the machine is shared and drifts), whole
# processes started from Python; medians, and the median of the paired
# differences. Needs: go, gcc, python3.
# Usage: docs/bench/run-overhead.sh [rounds]   (from the repository root)
set -euo pipefail
rounds=${1:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor" ./cmd/portfor
printf 'void _start(void) { __asm__ volatile("mov $60, %%eax\\n xor %%edi, %%edi\\n syscall"); }\n' >"$work/nop.c"
gcc -static -nostdlib -O2 -o "$work/nop" "$work/nop.c"
export PORTFOR_DB="$work/registry.db"
"$work/portfor" web >/dev/null
/usr/bin/python3 - "$rounds" "$work" <<'PY'
import subprocess, sys, time, statistics
rounds, w = int(sys.argv[1]), sys.argv[2]
cmds = {"portfor web (the hit)": [w + "/portfor", "web"],
        "portfor run web -- nop": [w + "/portfor", "run", "web", "--", w + "/nop"],
        "nop alone": [w + "/nop"]}
t = {k: [] for k in cmds}
for _ in range(rounds):
    for k, c in cmds.items():
        s = time.perf_counter()
        subprocess.run(c, stdout=subprocess.DEVNULL, check=True)
        t[k].append(time.perf_counter() - s)
for k, v in t.items():
    print(f"{k:26s} median {statistics.median(v) * 1000:6.2f} ms")
keys = list(cmds)
d = [r - h for r, h in zip(t[keys[1]], t[keys[0]])]
print(f"run - hit, median of paired differences: {statistics.median(d) * 1000:.2f} ms")
PY
