#!/usr/bin/env python3
"""Regenerates the example logs in examples/logs (deterministic: fixed seed).

Three days of staging traffic around the NO_TOKEN fix of 2025-09-08T23:30Z:
- logs/gateway/app.jsonl        flat JSON lines from the WebSocket gateway (staging and production)
- logs/gcp/export.json          a `gcloud logging read --format=json` export (JSON array, GCP LogEntry)
- logs/worker/payments.log.gz   plain-text Java worker logs, gzip-compressed
Recurrences of NO_TOKEN come back on 2025-09-10 in staging; decoys: NO_TOKEN in production,
NO_TOKEN_SCOPE in staging, NO_TOKEN mentioned in another field.
"""
import gzip, json, random, datetime as dt, os

random.seed(42)
here = os.path.dirname(os.path.abspath(__file__))
start = dt.datetime(2025, 9, 7, 0, 0, tzinfo=dt.timezone.utc)
end = dt.datetime(2025, 9, 10, 12, 0, tzinfo=dt.timezone.utc)
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxNzU3MzcwMDAwfQ.c2lnbmF0dXJlLW5vdC1yZWFs"

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

codes = ["OK"] * 40 + ["RATE_LIMITED", "UPSTREAM_TIMEOUT", "BAD_FRAME", "NO_TOKEN_SCOPE"]
timeout_fix = dt.datetime(2025, 9, 7, 12, 0, tzinfo=dt.timezone.utc)
def gateway_line(t, env, code=None, msg=None, extra=None):
    code = code or random.choice(codes)
    # The auth-service timeouts stopped with their fix (GATEWAY_AUTH_UPSTREAM_TIMEOUT_002).
    if code == "UPSTREAM_TIMEOUT" and t >= timeout_fix:
        code = "OK"
    rec = {"timestamp": iso(t), "level": "error" if code != "OK" else "info", "service": "ws-gateway",
           "environment": env, "request_id": f"req-{random.randrange(16**8):08x}",
           "event_id": f"evt-{random.randrange(16**12):012x}"}
    if code != "OK":
        rec["error_code"] = code
        rec["error_message"] = msg or {"RATE_LIMITED": "too many connection attempts",
                                       "UPSTREAM_TIMEOUT": "auth service did not answer in 2s",
                                       "BAD_FRAME": "client sent a malformed frame",
                                       "NO_TOKEN_SCOPE": "token lacks the ws:connect scope"}[code]
    else:
        rec["message"] = "connection upgraded"
    if extra:
        rec.update(extra)
    return json.dumps(rec, separators=(",", ":"))

os.makedirs(os.path.join(here, "logs/gateway"), exist_ok=True)
os.makedirs(os.path.join(here, "logs/gcp"), exist_ok=True)
os.makedirs(os.path.join(here, "logs/worker"), exist_ok=True)

fix = dt.datetime(2025, 9, 8, 23, 30, tzinfo=dt.timezone.utc)
lines = []
t = start
while t < end:
    env = "staging" if random.random() < 0.7 else "production"
    lines.append(gateway_line(t, env))
    t += dt.timedelta(seconds=random.randint(60, 240))
# The original incident: NO_TOKEN bursts in staging on 2025-09-08 before the fix.
for i in range(14):
    tt = dt.datetime(2025, 9, 8, 19, 1, 46, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=17 * i)
    lines.append(gateway_line(tt, "staging", "NO_TOKEN", "No JWT in WebSocket headers or subprotocols",
                              {"auth_headers": {"authorization_present": False, "subprotocols": ["graphql-ws"]}}))
# Decoys: production NO_TOKEN (out of scope), a message that mentions NO_TOKEN in another field.
for i in range(5):
    tt = dt.datetime(2025, 9, 9, 10, 0, tzinfo=dt.timezone.utc) + dt.timedelta(hours=3 * i)
    lines.append(gateway_line(tt, "production", "NO_TOKEN", "No JWT in WebSocket headers or subprotocols"))
lines.append(gateway_line(dt.datetime(2025, 9, 9, 14, 5, tzinfo=dt.timezone.utc), "staging", "OK", None,
                          {"message": "runbook check: NO_TOKEN alert silenced for deploy", "note": "NO_TOKEN"}))
# One line with a bearer token in a header dump (must be masked wherever it is shown).
lines.append(gateway_line(dt.datetime(2025, 9, 8, 20, 0, tzinfo=dt.timezone.utc), "staging", "NO_TOKEN",
                          "No JWT in WebSocket headers or subprotocols",
                          {"headers": {"Authorization": "Bearer " + JWT, "Sec-WebSocket-Protocol": "graphql-ws"}}))
lines.sort(key=lambda l: json.loads(l)["timestamp"])
with open(os.path.join(here, "logs/gateway/app.jsonl"), "w") as f:
    f.write("\n".join(lines) + "\n")

# The GCP export: newest first, as gcloud prints it. The recurrences live here.
entries = []
def gcp_entry(t, payload, severity="ERROR"):
    return {"insertId": f"{random.randrange(16**10):010x}", "jsonPayload": payload,
            "resource": {"type": "cloud_run_revision",
                         "labels": {"service_name": "ws-gateway", "location": "europe-west1",
                                    "revision_name": "ws-gateway-00042-xyz"}},
            "timestamp": iso(t), "severity": severity, "labels": {"environment": "staging"},
            "logName": "projects/demo-staging/logs/run.googleapis.com%2Fstdout",
            "receiveTimestamp": iso(t + dt.timedelta(milliseconds=250))}
t = dt.datetime(2025, 9, 9, 6, 0, tzinfo=dt.timezone.utc)
while t < end:
    entries.append(gcp_entry(t, {"message": "connection upgraded", "environment": "staging"}, "INFO"))
    t += dt.timedelta(minutes=random.randint(8, 20))
for i in range(6):
    tt = dt.datetime(2025, 9, 10, 8, 12, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=9 * i)
    entries.append(gcp_entry(tt, {"error_code": "NO_TOKEN", "environment": "staging",
                                  "message": "No JWT in WebSocket headers or subprotocols",
                                  "client": {"ip": "203.0.113.7", "user_agent": "mobile/5.2.0"}}))
entries.append(gcp_entry(dt.datetime(2025, 9, 10, 9, 0, tzinfo=dt.timezone.utc),
                         {"error_code": "NO_TOKEN_SCOPE", "environment": "staging",
                          "message": "token lacks the ws:connect scope"}))
entries.sort(key=lambda e: e["timestamp"], reverse=True)
with open(os.path.join(here, "logs/gcp/export.json"), "w") as f:
    json.dump(entries, f, indent=2)
    f.write("\n")

# Payment worker: plain text, OutOfMemoryError is still happening (fix still open).
out = []
t = start
while t < end:
    level = random.choice(["INFO"] * 8 + ["WARN"])
    out.append(f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {level} [payments-worker-1] settled batch {random.randrange(10**6)}")
    t += dt.timedelta(seconds=random.randint(120, 600))
for i in range(4):
    tt = dt.datetime(2025, 9, 9, 3, 0, tzinfo=dt.timezone.utc) + dt.timedelta(hours=7 * i)
    out.append(f"{tt.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z ERROR [payments-worker-1] java.lang.OutOfMemoryError: Java heap space while settling batch {i}")
out.sort()
# mtime=0 keeps the archive byte-for-byte reproducible.
with gzip.GzipFile(os.path.join(here, "logs/worker/payments.log.gz"), "wb", mtime=0) as f:
    f.write(("\n".join(out) + "\n").encode())
print(len(lines), len(entries), len(out))
