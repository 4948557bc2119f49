//! Deterministic benchmark corpora and rule sets, generated at bench time (nothing large is
//! committed). Shared by the criterion benches and `examples/gen_corpus.rs` (used by
//! `benches/compare.sh`).

#![allow(dead_code)]

use std::io::Write;

/// Forty error codes in the traffic, `NO_TOKEN_SCOPE` among them as a look-alike decoy.
pub const CODES: [&str; 40] = [
    "OK",
    "OK",
    "OK",
    "OK",
    "OK",
    "OK",
    "OK",
    "OK",
    "OK",
    "OK",
    "RATE_LIMITED",
    "UPSTREAM_TIMEOUT",
    "BAD_FRAME",
    "NO_TOKEN_SCOPE",
    "TOKEN_EXPIRED",
    "SESSION_EVICTED",
    "PAYLOAD_TOO_LARGE",
    "SCHEMA_MISMATCH",
    "DB_POOL_EXHAUSTED",
    "CACHE_MISS_STORM",
    "TLS_HANDSHAKE_FAILED",
    "DNS_LOOKUP_FAILED",
    "CIRCUIT_OPEN",
    "RETRY_BUDGET_EXCEEDED",
    "QUOTA_EXCEEDED",
    "INVALID_SIGNATURE",
    "CLOCK_SKEW",
    "REPLAY_DETECTED",
    "FEATURE_FLAG_MISSING",
    "CONFIG_STALE",
    "LEASE_LOST",
    "SHARD_UNAVAILABLE",
    "WRITE_CONFLICT",
    "READ_TIMEOUT",
    "CONNECTION_RESET",
    "HEALTHCHECK_FAILED",
    "PERMISSION_DENIED",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "UNSUPPORTED_VERSION",
];

/// Corpus envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Flat JSON lines from the application.
    Flat,
    /// One GCP LogEntry per line with the application's fields in `jsonPayload`.
    Gcp,
}

/// A tiny deterministic generator (no dependency, same corpus on every machine).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes about `bytes` bytes of log lines; `match_per_million` lines in a million are the
/// target (`NO_TOKEN` in staging). Returns the number of target lines written.
pub fn write_corpus(
    out: &mut impl Write,
    shape: Shape,
    bytes: u64,
    match_per_million: u64,
    seed: u64,
) -> std::io::Result<u64> {
    let mut rng = Lcg::new(seed);
    let mut written = 0u64;
    let mut targets = 0u64;
    let mut i = 0u64;
    let mut line = String::with_capacity(512);
    while written < bytes {
        line.clear();
        let secs = 1_757_376_000 + i / 20; // 20 lines a second from 2025-09-09
        let ms = (i * 37) % 1000;
        let ts = jiff::Timestamp::from_second(secs as i64).unwrap();
        let ts = format!("{}.{ms:03}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"));
        let staging = rng.below(10) < 7;
        let env = if staging { "staging" } else { "production" };
        let target = rng.below(1_000_000) < match_per_million;
        let code = if target {
            "NO_TOKEN"
        } else {
            CODES[rng.below(CODES.len() as u64) as usize]
        };
        let env = if target { "staging" } else { env };
        targets += target as u64;
        let msg = if target {
            "No JWT in WebSocket headers or subprotocols".to_string()
        } else if code == "OK" {
            "connection upgraded".to_string()
        } else {
            format!(
                "request failed with {} after {} ms",
                code.to_ascii_lowercase(),
                rng.below(5000)
            )
        };
        let payload = format!(
            "\"service\":\"ws-gateway\",\"environment\":\"{env}\",\"request_id\":\"req-{:016x}\",\"error_code\":\"{code}\",\"message\":\"{msg}\",\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64) mobile-sdk/{}.{}\",\"latency_ms\":{},\"pod\":\"ws-gateway-{:05x}\"",
            rng.next(),
            rng.below(9),
            rng.below(30),
            rng.below(3000),
            rng.below(0xfffff)
        );
        match shape {
            Shape::Flat => {
                line.push_str(&format!(
                    "{{\"timestamp\":\"{ts}\",\"level\":\"{}\",{payload}}}\n",
                    if code == "OK" { "info" } else { "error" }
                ));
            }
            Shape::Gcp => {
                line.push_str(&format!(
                    "{{\"insertId\":\"{:012x}\",\"jsonPayload\":{{{payload}}},\"resource\":{{\"type\":\"k8s_container\",\"labels\":{{\"cluster_name\":\"staging-eu\"}}}},\"timestamp\":\"{ts}\",\"severity\":\"{}\",\"logName\":\"projects/demo/logs/stdout\"}}\n",
                    rng.next() & 0xffff_ffff_ffff,
                    if code == "OK" { "INFO" } else { "ERROR" }
                ));
            }
        }
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        i += 1;
    }
    Ok(targets)
}

/// `n` rule files: the first is the target (`NO_TOKEN` in staging); the others track errors
/// absent from the traffic (as most tracked, fixed errors are), half of them scoped to staging,
/// a quarter with a message regex.
pub fn rules(n: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    out.push((
        "r0000.toml".to_string(),
        r#"id = "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001"
title = "No JWT"
owner = "auth@example.com"
analysis = "https://docs.example.com/a.md"
[fix]
status = "fixed"
fixed_at = "2025-09-01T00:00:00Z"
[scope]
environment = "staging"
[[signature]]
error_code = "NO_TOKEN"
"#
        .to_string(),
    ));
    for i in 1..n {
        let scope = if i % 2 == 0 {
            "[scope]\nenvironment = \"staging\"\n"
        } else {
            ""
        };
        let extra = if i % 4 == 1 {
            format!("message = {{ regex = 'legacy failure {i} .*' }}\n")
        } else {
            String::new()
        };
        out.push((
            format!("r{i:04}.toml"),
            format!(
                "id = \"LEGACY_{i:04}\"\ntitle = \"Legacy error {i}\"\nowner = \"team{}@example.com\"\nanalysis = \"https://docs.example.com/{i}.md\"\n[fix]\nstatus = \"fixed\"\nfixed_at = \"2025-09-01T00:00:00Z\"\n{scope}[[signature]]\nerror_code = \"LEGACY_ERR_{i:04}\"\n{extra}",
                i % 17
            ),
        ));
    }
    out
}
