#!/usr/bin/env bash
# Measures `recur watch` on a state that already has history: write-to-notification latency
# (p50/p99) under a steady writer, CPU while writing, and idle CPU.
#
#   benches/watch_latency.sh [SECONDS] [RECUR_BINARY] [HISTORY]
#
# 1. Seeds a state with HISTORY (default 200000) stored occurrences of another remediation
#    (`recur scan` of a generated file; its notifications go to the console then, so the
#    outbox holds nothing pending).
# 2. Starts the sidecar (native notifications) on an empty log and runs a steady writer for
#    SECONDS (default 60): 200 non-matching lines a second, plus a probe line every 60 ms.
#    The writer starts after a 5 s warm-up (the first turn recomputes every remediation).
#    Each probe opens its own episode (`resolve` is shorter than the probe spacing) and so
#    produces one console notification; the time from the probe's write to its notification
#    on stderr is its latency. Reported: p50/p99/max over every probe answered.
# 3. With the writer stopped, idle CPU: the sidecar's user+system time over 10 s, from /proc.
set -euo pipefail
seconds=${1:-60}
bin=${2:-target/release/recur}
history=${3:-200000}
[ -x "$bin" ] || { echo "build first: cargo build --release (or pass a binary)" >&2; exit 2; }
bin=$(realpath "$bin")
exec python3 - "$seconds" "$bin" "$history" <<'PY'
import datetime, os, re, subprocess, sys, tempfile, threading, time

seconds, binary, history = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
LAT = '''id = "LAT"
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
resolve = "20ms"
'''
HIST = LAT.replace('"LAT"', '"HIST"').replace('"PROBE"', '"OLD"').replace('resolve = "20ms"\n', '')
tick = os.sysconf("SC_CLK_TCK")

def stamp(t=None):
    t = datetime.datetime.now(datetime.timezone.utc) if t is None else t
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

with tempfile.TemporaryDirectory() as d:
    os.makedirs(f"{d}/rules")
    open(f"{d}/rules/lat.toml", "w").write(LAT)
    open(f"{d}/rules/hist.toml", "w").write(HIST)
    # History: one occurrence a minute, ending a week ago.
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=7, minutes=history)
    with open(f"{d}/history.log", "w") as f:
        for i in range(history):
            t = start + datetime.timedelta(minutes=i)
            f.write('{"time":"%s","error_code":"OLD","n":%d}\n' % (stamp(t), i))
    t0 = time.perf_counter()
    # Exit 1 means recurrences were found, which they are.
    r = subprocess.run([binary, "scan", "history.log"], cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 1):
        sys.exit(f"seeding the history failed: {r.stderr}")
    print(f"history: {history} occurrences of another remediation (seeded in {time.perf_counter() - t0:.1f} s)")
    os.remove(f"{d}/history.log")
    open(f"{d}/app.log", "w").close()

    p = subprocess.Popen([binary, "watch", "app.log", "--watch-mode", "native"], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1)
    seen = {}          # probe number -> perf_counter of its notification
    ready = threading.Event()
    def read():
        header_at = None
        for line in p.stderr:
            now = time.perf_counter()
            if "following" in line:
                ready.set()
            if "[recur] LAT recurred" in line:
                header_at = now
            m = re.search(r'"probe":(\d+)', line)
            if m and header_at is not None:
                seen.setdefault(int(m.group(1)), header_at)
                header_at = None
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30):
        sys.exit("recur watch did not start")
    time.sleep(5)

    def cpu():
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick

    sent = {}          # probe number -> perf_counter of its write
    filler_every, probe_every = 1 / 200, 0.060
    c0, w0 = cpu(), time.perf_counter()
    next_filler = next_probe = w0
    n = probe = 0
    with open(f"{d}/app.log", "a", buffering=1) as f:
        while time.perf_counter() - w0 < seconds:
            now = time.perf_counter()
            if now >= next_probe:
                f.write('{"time":"%s","error_code":"PROBE","probe":%d}\n' % (stamp(), probe))
                sent[probe] = time.perf_counter()
                probe += 1
                next_probe += probe_every
            elif now >= next_filler:
                f.write('{"time":"%s","msg":"request served","n":%d}\n' % (stamp(), n))
                n += 1
                next_filler += filler_every
            else:
                time.sleep(max(0, min(next_probe, next_filler) - now))
    w1 = time.perf_counter()
    c1 = cpu()
    deadline = time.perf_counter() + 10
    while len(seen) < len(sent) and time.perf_counter() < deadline:
        time.sleep(0.05)
    lat = sorted((seen[i] - sent[i]) * 1000 for i in sent if i in seen)
    if not lat:
        sys.exit("no probe was notified")
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"steady writer: {n / (w1 - w0):.0f} lines/s for {w1 - w0:.0f} s, {len(sent)} probes, {len(lat)} notified")
    print(f"write-to-notification latency: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms")
    print(f"CPU while writing: {100 * (c1 - c0) / (w1 - w0):.1f}% of one core")

    time.sleep(2)
    c0, t0 = cpu(), time.perf_counter()
    time.sleep(10)
    c1, t1 = cpu(), time.perf_counter()
    p.terminate(); p.wait(5)
    print(f"idle CPU with history: {100 * (c1 - c0) / (t1 - t0):.2f}% of one core over {t1 - t0:.0f} s")
PY
