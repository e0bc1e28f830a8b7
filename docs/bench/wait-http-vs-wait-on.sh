#!/usr/bin/env bash
# Compares `portfor wait http://…` with wait-on (npm) as whole processes: how
# long after an HTTP server comes up on loopback each waiter notices it and
# exits. Each run starts the waiter, starts the server 1 s later plus a random
# 0-250 ms (so that it appears at a random point of each tool's polling cycle,
# not at one fixed by the tool's start-up time), listening and then serving 200
# to GET and HEAD, and times listen() to the waiter's exit. The tools
# alternate, run by run; medians are quoted (the machine is shared). wait-on
# runs with its defaults (HEAD request, interval 250 ms). `portfor wait
# 127.0.0.1:P` (TCP only) runs too, as the floor the HTTP wait builds on.
# wait-on is installed with npm into a temporary directory, never the repository.
# Needs: go, python3, node and npm.
# Usage: docs/bench/wait-http-vs-wait-on.sh [runs]   (from the repository root)
set -euo pipefail
runs=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -ldflags='-s -w' -o "$work/portfor" ./cmd/portfor
npm install --prefix "$work/npm" --no-audit --no-fund --loglevel=error wait-on >/dev/null
echo "wait-on $(node -p "require('$work/npm/node_modules/wait-on/package.json').version"), node $(node --version), portfor $(git describe --always --dirty)"

python3 - "$runs" "$work/portfor" "$work/npm/node_modules/.bin/wait-on" "$work/registry.db" <<'PY'
import http.server, random, socket, statistics, subprocess, sys, threading, time

runs, portfor, wait_on, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_HEAD = do_GET
    def log_message(self, *args):
        pass

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

def once(argv, port):
    """Start the waiter, bring the server up 1-1.25 s later, and return the time
    from listen() to the waiter's exit, in ms."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    exited = []
    watcher = threading.Thread(target=lambda: (proc.wait(), exited.append(time.monotonic())))
    watcher.start()
    time.sleep(1.0 + random.uniform(0, 0.25))  # the server comes up 1 s after the waiter starts
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)  # binds and listens
    up = time.monotonic()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    watcher.join(timeout=30)
    srv.shutdown()
    srv.server_close()
    if not exited or proc.returncode != 0:
        proc.kill()
        raise SystemExit(f"{argv}: exit {proc.returncode}: {proc.stderr.read().decode()}")
    return (exited[0] - up) * 1000

tools = {
    "portfor": lambda p: [portfor, "--db", db, "wait", "-q", "-t", "30", f"http://127.0.0.1:{p}/"],
    "wait-on": lambda p: [wait_on, "-t", "30000", f"http://127.0.0.1:{p}/"],
    "portfor-tcp": lambda p: [portfor, "--db", db, "wait", "-q", "-t", "30", f"127.0.0.1:{p}"],
}
lat = {name: [] for name in tools}
for i in range(runs):
    for name, argv in tools.items():  # alternate, run by run
        port = free_port()
        lat[name].append(once(argv(port), port))

for name, xs in lat.items():
    xs.sort()
    print(f"{name:11} median {statistics.median(xs):7.1f} ms  min {xs[0]:7.1f}  max {xs[-1]:7.1f}  ({len(xs)} runs)")
ratio = statistics.median(lat["wait-on"]) / statistics.median(lat["portfor"])
print(f"portfor (http) noticed the server {ratio:.1f}x sooner than wait-on (median against median)")
PY
