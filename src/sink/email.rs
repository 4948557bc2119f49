//! The email channel: one message over SMTP (lettre), with a text and an HTML part.
//!
//! `smtp://` speaks plain SMTP, upgraded with STARTTLS when `tls = "starttls"` (the default
//! for `smtp://`; the upgrade is required, never silently skipped); `smtps://` is implicit TLS.
//! Credentials come from environment variables named in `recur.toml` and never appear in an
//! error: every failure message is scrubbed of them before it leaves this module.

use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, Header, HeaderName};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::{Channel, Notification, SendError, render, scrub};
use crate::config::TlsMode;

/// `X-Recur-Dedup-Key`: the notification's dedup key, readable by mail filters.
#[derive(Debug, Clone)]
struct DedupKeyHeader(String);

impl Header for DedupKeyHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Recur-Dedup-Key")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(DedupKeyHeader(s.to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A configured email channel.
pub struct Email {
    name: String,
    host: String,
    port: u16,
    tls: TlsMode,
    from: Mailbox,
    from_raw: String,
    to: Vec<Mailbox>,
    credentials: Option<(String, String)>,
    /// Extra trusted roots (PEM bytes) from `ca_file`.
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
}

/// Host and port of an `smtp://` / `smtps://` URL (user info, path and query are ignored).
pub fn parse_smtp_url(url: &str, tls: TlsMode) -> Result<(String, u16), String> {
    let (rest, implicit) = if let Some(r) = url.strip_prefix("smtps://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("smtp://") {
        (r, false)
    } else {
        return Err("the URL must start with smtp:// or smtps://".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        // [v6]:port
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the SMTP host".to_string())?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("the SMTP URL names no host".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number"))?,
        None if implicit => 465,
        None if tls == TlsMode::None => 25,
        None => 587,
    };
    Ok((host, port))
}

fn env_var(var: &str, what: &str, channel: &str) -> Result<String, SendError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(SendError(format!(
            "environment variable {var} ({what} of channel `{channel}`) is not set"
        ))),
    }
}

impl Email {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        url: &str,
        tls: TlsMode,
        from: &str,
        to: &[String],
        username_env: Option<&str>,
        password_env: Option<&str>,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<Email, SendError> {
        let (host, port) =
            parse_smtp_url(url, tls).map_err(|e| SendError(format!("channel `{name}`: {e}")))?;
        let mailbox = |s: &str, what: &str| {
            s.parse::<Mailbox>()
                .map_err(|e| SendError(format!("channel `{name}`: invalid {what} `{s}`: {e}")))
        };
        let credentials = match (username_env, password_env) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((
                env_var(u, "username_env", name)?,
                env_var(p, "password_env", name)?,
            )),
            (Some(_), None) | (None, Some(_)) => {
                return Err(SendError(format!(
                    "channel `{name}`: set both `username_env` and `password_env`, or neither"
                )));
            }
        };
        let ca_pem = match ca_file {
            None => None,
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                SendError(format!(
                    "channel `{name}`: cannot read ca_file {}: {e}",
                    p.display()
                ))
            })?),
        };
        Ok(Email {
            ca_pem,
            name: name.to_string(),
            host,
            port,
            tls,
            from: mailbox(from, "`from` address")?,
            from_raw: from.to_string(),
            to: to
                .iter()
                .map(|t| mailbox(t, "`to` address"))
                .collect::<Result<_, _>>()?,
            credentials,
            timeout,
        })
    }

    /// The message for a notification (public for tests and previews).
    pub fn message(&self, n: &Notification) -> Result<Message, SendError> {
        let c = render::email(n);
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(c.subject)
            .message_id(Some(render::message_id(&n.dedup_key, &self.from_raw)))
            .header(DedupKeyHeader(n.dedup_key.clone()));
        for t in &self.to {
            b = b.to(t.clone());
        }
        // Quoted-printable always: samples can be long single lines, which 7bit/8bit forbid.
        let part = |ct: ContentType, body: String| {
            SinglePart::builder()
                .header(ct)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(body)
        };
        b.multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, c.text))
                .singlepart(part(ContentType::TEXT_HTML, c.html)),
        )
        .map_err(|e| SendError(format!("cannot build the email: {e}")))
    }

    fn transport(&self) -> Result<SmtpTransport, SendError> {
        let tls_params = || {
            let mut b = TlsParameters::builder(self.host.clone());
            if let Some(pem) = &self.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    SendError(format!(
                        "channel `{}`: ca_file holds no usable PEM certificate: {e}",
                        self.name
                    ))
                })?;
                b = b.add_root_certificate(cert);
            }
            b.build()
                .map_err(|e| SendError(format!("TLS setup for {}: {e}", self.endpoint())))
        };
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(tls_params()?),
            TlsMode::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut b = SmtpTransport::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let Some((u, p)) = &self.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Turns a lettre error into a precise, secret-free reason.
    fn describe(&self, e: &lettre::transport::smtp::Error) -> String {
        let chain = error_chain(e);
        let lower = chain.to_ascii_lowercase();
        let at = self.endpoint();
        let reason = if let Some(code) = e.status() {
            let c = code.to_string();
            if c.starts_with("535") || c.starts_with("534") || c.starts_with("530") {
                format!("SMTP authentication rejected by {at} ({chain})")
            } else {
                format!("SMTP server {at} refused the message ({chain})")
            }
        } else if e.is_tls() {
            format!("TLS with {at} failed: {chain}")
        } else if e.is_timeout() || lower.contains("timed out") {
            format!("timed out talking to {at}")
        } else if lower.contains("connection refused") {
            format!("TCP connect to {at} refused")
        } else if lower.contains("lookup") || lower.contains("name or service not known") {
            format!("DNS lookup of `{}` failed: {chain}", self.host)
        } else if self.tls != TlsMode::None
            && [
                "corrupt message",
                "certificate",
                "handshake",
                "tls",
                "alert",
            ]
            .iter()
            .any(|w| lower.contains(w))
        {
            let hint = if self.tls == TlsMode::Tls {
                " (smtps:// expects implicit TLS, usually on port 465; use smtp:// with tls = \"starttls\" for port 587)"
            } else {
                ""
            };
            format!("TLS with {at} failed: {chain}{hint}")
        } else if lower.contains("no compatible authentication mechanism") {
            format!(
                "{at} offers no authentication mechanism recur can use (PLAIN or LOGIN); is TLS required first?"
            )
        } else {
            format!("SMTP with {at} failed: {chain}")
        };
        let mut secrets: Vec<&str> = Vec::new();
        if let Some((u, p)) = &self.credentials {
            secrets.push(p);
            secrets.push(u);
        }
        scrub(
            &format!("channel `{}` (email): {reason}", self.name),
            &secrets,
        )
    }
}

/// `error: source: source …`, without repeating a source the outer message already shows.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl Channel for Email {
    fn send(&self, n: &Notification) -> Result<(), SendError> {
        let msg = self.message(n)?;
        let transport = self.transport()?;
        transport
            .send(&msg)
            .map(|_| ())
            .map_err(|e| SendError(self.describe(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://mail.example.com", TlsMode::StartTls).unwrap(),
            ("mail.example.com".into(), 587)
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.example.com", TlsMode::None).unwrap(),
            ("mail.example.com".into(), 25)
        );
        assert_eq!(
            parse_smtp_url("smtps://u:p@mail.example.com:2465/x", TlsMode::Tls).unwrap(),
            ("mail.example.com".into(), 2465)
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:2525", TlsMode::None).unwrap(),
            ("::1".into(), 2525)
        );
        assert!(parse_smtp_url("smtp://:25", TlsMode::None).is_err());
        assert!(parse_smtp_url("smtp://h:x", TlsMode::None).is_err());
    }
}
