//! Webhook and Slack channels: one JSON POST each (ureq), with a timeout and no redirects.
//!
//! The receiver URL (often a bearer secret itself, as with Slack's incoming webhooks) and any
//! header values are scrubbed from every error message: failures name the channel and the kind
//! of failure (DNS, TCP connect, TLS, timeout, HTTP status) but never where it was going.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Channel, Notification, SendError, render, scrub};

/// Which body to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The generic JSON document with `Idempotency-Key`.
    Webhook,
    /// A Slack Block Kit message.
    Slack,
}

impl Flavor {
    fn as_str(self) -> &'static str {
        match self {
            Flavor::Webhook => "webhook",
            Flavor::Slack => "slack",
        }
    }
}

/// A configured webhook or Slack channel.
pub struct Http {
    name: String,
    flavor: Flavor,
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl Http {
    /// Resolves `url`/`url_env` and the `headers_env` values from the environment.
    pub fn new(
        name: &str,
        flavor: Flavor,
        url: Option<&str>,
        url_env: Option<&str>,
        headers_env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Http, SendError> {
        let env = |var: &str, what: &str| match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(SendError(format!(
                "environment variable {var} ({what} of channel `{name}`) is not set"
            ))),
        };
        let url = match (url, url_env) {
            (Some(u), _) => u.to_string(),
            (None, Some(var)) => {
                let u = env(var, "url_env")?;
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(SendError(format!(
                        "environment variable {var} (url_env of channel `{name}`) does not hold an http(s) URL"
                    )));
                }
                u
            }
            (None, None) => {
                return Err(SendError(format!("channel `{name}` has no receiver URL")));
            }
        };
        let mut headers = Vec::new();
        for (h, var) in headers_env {
            headers.push((h.clone(), env(var, &format!("header {h}"))?));
        }
        Ok(Http {
            name: name.to_string(),
            flavor,
            url,
            headers,
            timeout,
        })
    }

    fn secrets(&self) -> Vec<&str> {
        let mut s: Vec<&str> = vec![self.url.as_str()];
        // The part after the host is what makes a webhook URL a secret; it can show up alone.
        if let Some(rest) = self.url.split_once("://").map(|(_, r)| r) {
            if let Some(i) = rest.find(['/', '?'])
                && rest.len() - i > 1
            {
                s.push(&rest[i..]);
            }
            if let Some((userinfo, _)) = rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
                s.push(userinfo);
            }
        }
        s.extend(self.headers.iter().map(|(_, v)| v.as_str()));
        s
    }

    fn fail(&self, reason: String) -> SendError {
        SendError(scrub(
            &format!(
                "channel `{}` ({}): {reason}",
                self.name,
                self.flavor.as_str()
            ),
            &self.secrets(),
        ))
    }

    fn describe(&self, e: &ureq::Error) -> String {
        let detail = super::email::error_chain(e);
        match e {
            ureq::Error::HostNotFound => "DNS lookup of the receiver's host failed".into(),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "TCP connect to the receiver refused".into()
            }
            ureq::Error::ConnectionFailed => "TCP connect to the receiver failed".into(),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                format!("timed out after {}s", self.timeout.as_secs_f64())
            }
            ureq::Error::Timeout(t) => {
                format!("timed out ({t}) after {}s", self.timeout.as_secs_f64())
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => {
                format!("TLS with the receiver failed: {detail}")
            }
            ureq::Error::Io(io)
                if io.to_string().contains("lookup")
                    || io.to_string().contains("Name or service not known") =>
            {
                format!("DNS lookup of the receiver's host failed: {io}")
            }
            ureq::Error::Io(io) => format!("connection to the receiver failed: {io}"),
            _ => format!("request failed: {detail}"),
        }
    }
}

impl Channel for Http {
    fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = match self.flavor {
            Flavor::Webhook => render::webhook(n),
            Flavor::Slack => render::slack(n),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("recur/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut req = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &n.dedup_key);
        for (h, v) in &self.headers {
            req = req.header(h.as_str(), v.as_str());
        }
        let resp = req
            .send(body.to_string())
            .map_err(|e| self.fail(self.describe(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // A short excerpt of the body says why (Slack answers `invalid_payload`, `no_service`).
        let mut resp = resp;
        let text = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let excerpt: String = crate::redact::strip_controls(text.trim())
            .chars()
            .take(200)
            .collect();
        Err(self.fail(format!(
            "HTTP {} {}{}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            if excerpt.is_empty() {
                String::new()
            } else {
                format!(": {excerpt}")
            }
        )))
    }
}
