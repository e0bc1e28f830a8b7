import subprocess, time, statistics, os, sys
cmds = {"hit": ["/tmp/pfbin/portfor", "web"], "forward": ["/tmp/pfbin/portfor", "forward", "web"],
        "run": ["/tmp/pfbin/portfor", "run", "web", "--", "/bin/true"], "true": ["/bin/true"]}
t = {k: [] for k in cmds}
for i in range(int(sys.argv[1])):
    for k, c in cmds.items():
        s = time.perf_counter(); subprocess.run(c, stdout=subprocess.DEVNULL); t[k].append(time.perf_counter() - s)
for k, v in t.items(): print(k, "%.2f ms" % (statistics.median(v) * 1000))
d = [r - h for r, h in zip(t["run"], t["hit"])]
print("run-hit median of paired differences %.2f ms" % (statistics.median(d) * 1000))
