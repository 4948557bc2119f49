#!/usr/bin/env bash
# Measures `recur watch`: write-to-notification latency (p50/p99) and idle CPU.
#
#   benches/watch_latency.sh [TRIALS] [RECUR_BINARY]
#
# Each trial starts a fresh sidecar on an empty log (native notifications), appends one
# matching line and times the moment the console notification appears on stderr. Idle CPU is
# the sidecar's user+system time over 10 s with nothing written, from /proc.
set -euo pipefail
trials=${1:-30}
bin=${2:-target/release/recur}
[ -x "$bin" ] || { echo "build first: cargo build --release (or pass a binary)" >&2; exit 2; }
bin=$(realpath "$bin")
exec python3 - "$trials" "$bin" <<'PY'
import os, subprocess, sys, tempfile, time

trials, binary = int(sys.argv[1]), sys.argv[2]
RULE = '''id = "LAT"
title = "latency probe"
owner = "o@example.com"
analysis = "https://docs.example.com/lat.md"
[fix]
status = "fixed"
fixed_at = "2020-01-01T00:00:00Z"
[[signature]]
error_code = "PROBE"
[alert]
threshold = 1
window = "1h"
'''

def start(d):
    os.makedirs(f"{d}/rules", exist_ok=True)
    open(f"{d}/rules/lat.toml", "w").write(RULE)
    open(f"{d}/app.log", "w").close()
    err = open(f"{d}/stderr", "w")
    p = subprocess.Popen([binary, "watch", "app.log", "--watch-mode", "native"], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=err)
    while "following" not in open(f"{d}/stderr").read():
        time.sleep(0.005)
    return p

lat = []
for i in range(trials):
    with tempfile.TemporaryDirectory() as d:
        p = start(d)
        t0 = time.perf_counter()
        with open(f"{d}/app.log", "a") as f:
            f.write('{"error_code":"PROBE","n":%d}\n' % i)
        while "[recur] LAT recurred" not in open(f"{d}/stderr").read():
            time.sleep(0.0005)
            if time.perf_counter() - t0 > 10:
                sys.exit("no notification within 10 s")
        lat.append((time.perf_counter() - t0) * 1000)
        p.terminate(); p.wait(5)
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"write-to-notification latency over {trials} trials: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms")

with tempfile.TemporaryDirectory() as d:
    p = start(d)
    tick = os.sysconf("SC_CLK_TCK")
    def cpu():
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick
    time.sleep(1)
    c0, t0 = cpu(), time.perf_counter()
    time.sleep(10)
    c1, t1 = cpu(), time.perf_counter()
    p.terminate(); p.wait(5)
    print(f"idle CPU: {100 * (c1 - c0) / (t1 - t0):.2f}% of one core over {t1 - t0:.0f} s")
PY
