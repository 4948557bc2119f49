//! Real servers on 127.0.0.1 for notification tests, started by the tests themselves.
//!
//! - [`MailServer`]: a real SMTP server, mailin-embedded (the `mailin` SMTP state machine behind
//!   a blocking listener), with STARTTLS from the test certificate and AUTH PLAIN/LOGIN. It is
//!   what the email tests talk to.
//! - [`SmtpsServer`]: a small hand-written SMTP receiver, kept only for implicit TLS (`smtps://`,
//!   TLS from the first byte), which mailin-embedded does not offer.
//! - [`HttpServer`]: an HTTP/1.1 receiver answering from a script (refusals, a hang-up after
//!   reading, a held answer), for webhooks and Slack.
//!
//! All record what they got and time out idle clients.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on a thread until dropped.
struct Acceptor {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = Arc::new(handle);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
                let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
                let h = handle.clone();
                std::thread::spawn(move || h(conn));
            }
        });
        Acceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits (bounded) until `f` holds.
pub fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- SMTP messages

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub rcpt: Vec<String>,
    pub auth_user: Option<String>,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The DATA section, dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl Mail {
    /// Unfolded top-level headers, names lower-cased.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        parse_headers(head)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v)
    }

    /// The decoded body of the part with this content type (`text/plain`, `text/html`).
    pub fn part(&self, content_type: &str) -> Option<String> {
        let ct = self.header("content-type")?;
        let boundary = ct
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("boundary="))?
            .trim_matches('"')
            .to_string();
        let body = self.data.split_once("\r\n\r\n")?.1;
        for part in body.split(&format!("--{boundary}")).skip(1) {
            let part = part.trim_start_matches("\r\n");
            let Some((head, content)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let headers = parse_headers(head);
            let get = |n: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            if !get("content-type").starts_with(content_type) {
                continue;
            }
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            return Some(match get("content-transfer-encoding").as_str() {
                "quoted-printable" => decode_qp(content),
                "base64" => String::from_utf8(decode_base64(&content.replace("\r\n", ""))).unwrap(),
                _ => content.to_string(),
            });
        }
        None
    }
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// Quoted-printable (RFC 2045) decoding.
pub fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 after quoted-printable decoding")
}

pub fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ------------------------------------------------------- SMTP (mailin-embedded)

/// How a [`MailServer`] is set up.
#[derive(Debug, Clone, Default)]
pub struct MailOptions {
    /// Offer STARTTLS with the test certificate (trusted through [`test_ca_path`]).
    pub starttls: bool,
    /// Offer AUTH PLAIN and LOGIN and accept only this user and password. mailin offers AUTH
    /// only once the connection is encrypted, so this needs `starttls`, and an authenticated
    /// mail proves the STARTTLS upgrade happened.
    pub auth: Option<(String, String)>,
    /// Answer the first N `MAIL FROM` with `451` (a temporary failure), then accept.
    pub refuse_first: u32,
    /// Listen on this port (a server that comes up later on a known port); any free one if 0.
    pub port: u16,
}

/// State shared by every session of one [`MailServer`].
#[derive(Default)]
struct MailShared {
    mails: Mutex<Vec<Mail>>,
    refusals_left: Mutex<u32>,
    /// `MAIL FROM` commands seen, refused or not.
    attempts: Mutex<u32>,
}

/// The mailin handler: cloned fresh for each connection, so the per-session fields start empty.
#[derive(Clone)]
struct MailHandler {
    shared: Arc<MailShared>,
    auth: Option<(String, String)>,
    starttls: bool,
    from: String,
    rcpt: Vec<String>,
    auth_user: Option<String>,
    data: Vec<u8>,
}

impl MailHandler {
    fn check(&mut self, user: &str, password: &str) -> mailin_embedded::Response {
        match &self.auth {
            Some((u, p)) if u == user && p == password => {
                self.auth_user = Some(user.to_string());
                mailin_embedded::response::AUTH_OK
            }
            _ => mailin_embedded::response::INVALID_CREDENTIALS,
        }
    }
}

impl mailin_embedded::Handler for MailHandler {
    fn mail(
        &mut self,
        _ip: std::net::IpAddr,
        _domain: &str,
        from: &str,
    ) -> mailin_embedded::Response {
        *self.shared.attempts.lock().unwrap() += 1;
        let mut left = self.shared.refusals_left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return mailin_embedded::Response::custom(
                451,
                "4.3.0 Temporarily unable to accept mail, try again later".to_string(),
            );
        }
        if self.auth.is_some() && self.auth_user.is_none() {
            return mailin_embedded::response::AUTHENTICATION_REQUIRED;
        }
        self.from = from.to_string();
        self.rcpt.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
        self.rcpt.push(to.to_string());
        mailin_embedded::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> mailin_embedded::Response {
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let mail = Mail {
            from: self.from.clone(),
            rcpt: self.rcpt.clone(),
            auth_user: self.auth_user.clone(),
            // mailin allows AUTH only over TLS: an authenticated mail came after STARTTLS.
            tls: self.starttls && self.auth_user.is_some(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        };
        self.shared.mails.lock().unwrap().push(mail);
        mailin_embedded::response::OK
    }

    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> mailin_embedded::Response {
        self.check(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> mailin_embedded::Response {
        self.check(username, password)
    }
}

/// A real SMTP server (mailin-embedded) on 127.0.0.1. mailin-embedded has no shutdown, so the
/// server lives until the test process ends: its threads sit in `accept` and cost nothing.
pub struct MailServer {
    port: u16,
    shared: Arc<MailShared>,
}

impl MailServer {
    pub fn start(options: MailOptions) -> MailServer {
        assert!(
            options.auth.is_none() || options.starttls,
            "mailin offers AUTH only after STARTTLS"
        );
        let listener = TcpListener::bind(("127.0.0.1", options.port)).unwrap_or_else(|e| {
            panic!("bind 127.0.0.1:{}: {e}", options.port);
        });
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(MailShared {
            refusals_left: Mutex::new(options.refuse_first),
            ..Default::default()
        });
        let handler = MailHandler {
            shared: shared.clone(),
            auth: options.auth.clone(),
            starttls: options.starttls,
            from: String::new(),
            rcpt: Vec::new(),
            auth_user: None,
            data: Vec::new(),
        };
        let mut server = mailin_embedded::Server::new(handler);
        server
            .with_name("127.0.0.1")
            .with_num_threads(4)
            .with_tcp_listener(listener);
        if options.starttls {
            let dir = crate::harness::repo().join("tests/it/fixtures/tls");
            server
                .with_ssl(mailin_embedded::SslConfig::SelfSigned {
                    cert_path: dir.join("server.pem").display().to_string(),
                    key_path: dir.join("server.key").display().to_string(),
                })
                .expect("the test certificate loads");
        }
        if options.auth.is_some() {
            server
                .with_auth(mailin_embedded::AuthMechanism::Plain)
                .with_auth(mailin_embedded::AuthMechanism::Login);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        MailServer { port, shared }
    }

    /// Plain SMTP, no TLS, no AUTH.
    pub fn plain() -> MailServer {
        MailServer::start(MailOptions::default())
    }

    /// STARTTLS and AUTH with this user and password.
    pub fn with_auth(user: &str, password: &str) -> MailServer {
        MailServer::start(MailOptions {
            starttls: true,
            auth: Some((user.to_string(), password.to_string())),
            ..Default::default()
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// `MAIL FROM` commands received, including refused ones.
    pub fn attempts(&self) -> u32 {
        *self.shared.attempts.lock().unwrap()
    }
}

// ------------------------------------------------ SMTP (hand-written, implicit TLS)

/// The test CA (PEM) that signed the receivers' certificate for 127.0.0.1.
pub fn test_ca_path() -> std::path::PathBuf {
    crate::harness::repo().join("tests/it/fixtures/tls/ca.pem")
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = crate::harness::repo().join("tests/it/fixtures/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}

/// A line-oriented TLS connection.
struct TlsConn {
    stream: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsConn {
    /// One line including its end, or `None` at end of stream.
    fn line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                let line = std::mem::replace(&mut self.buf, rest);
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn send(&mut self, s: &str) -> std::io::Result<()> {
        self.stream.write_all(s.as_bytes())?;
        self.stream.flush()
    }
}

/// An SMTP receiver speaking TLS from the first byte (`smtps://`, port 465 style).
///
/// Hand-written because mailin-embedded, the real server the other email tests use, only
/// offers STARTTLS. It speaks just what a submission needs (EHLO, MAIL, RCPT, DATA, QUIT).
pub struct SmtpsServer {
    acceptor: Acceptor,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpsServer {
    pub fn start() -> SmtpsServer {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m2 = mails.clone();
        let acceptor = Acceptor::start(move |conn| {
            let _ = smtps_session(conn, &m2);
        });
        SmtpsServer { acceptor, mails }
    }

    pub fn port(&self) -> u16 {
        self.acceptor.addr.port()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

fn smtps_session(raw: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(tls_config()).map_err(std::io::Error::other)?;
    let mut c = TlsConn {
        stream: rustls::StreamOwned::new(conn, raw),
        buf: Vec::new(),
    };
    c.send("220 127.0.0.1 ESMTP recur-test\r\n")?;
    let mut mail = Mail {
        from: String::new(),
        rcpt: Vec::new(),
        auth_user: None,
        data: String::new(),
        tls: true,
    };
    loop {
        let Some(line) = c.line()? else {
            return Ok(());
        };
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            c.send("250-127.0.0.1\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = cmd[10..].trim().to_string();
            c.send("250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt.push(cmd[8..].trim().to_string());
            c.send("250 OK\r\n")?;
        } else if upper == "DATA" {
            c.send("354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let Some(line) = c.line()? else {
                    return Ok(());
                };
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            mail.data = data;
            mails.lock().unwrap().push(mail.clone());
            c.send("250 OK queued\r\n")?;
        } else if upper == "QUIT" {
            c.send("221 Bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            c.send("250 OK\r\n")?;
        } else {
            c.send("502 Command not implemented\r\n")?;
        }
    }
}

// ---------------------------------------------------------------- HTTP

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// What the server does with the next request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Reads the request whole, then closes without answering (a crash after receiving).
    Hangup,
    /// Reads the request, waits this long, then answers 200 (a slow receiver).
    Slow(Duration),
    /// Reads the request whole, then keeps the connection open without answering (a receiver
    /// that hangs), for 30 s.
    Silent,
}

/// An HTTP receiver answering from a script, then 200 for everything.
pub struct HttpServer {
    acceptor: Acceptor,
    pub requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl HttpServer {
    pub fn start(script: &[Reply]) -> HttpServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (r2, s2) = (requests.clone(), script.clone());
        let acceptor = Acceptor::start(move |conn| {
            let _ = http_session(conn, &r2, &s2);
        });
        HttpServer {
            acceptor,
            requests,
            script,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.acceptor.addr.port())
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Replaces the rest of the script.
    pub fn script(&self, replies: &[Reply]) {
        *self.script.lock().unwrap() = replies.iter().copied().collect();
    }
}

fn http_session(
    conn: TcpStream,
    requests: &Mutex<Vec<Request>>,
    script: &Mutex<VecDeque<Reply>>,
) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    // One request per connection (every answer says `Connection: close`).
    {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut it = line.split_whitespace();
        let method = it.next().unwrap_or("").to_string();
        let path = it.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        requests.lock().unwrap().push(Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let reply = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Status(200));
        match reply {
            Reply::Hangup => Ok(()),
            Reply::Slow(d) => {
                std::thread::sleep(d);
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                )?;
                w.flush()
            }
            Reply::Silent => {
                std::thread::sleep(Duration::from_secs(30));
                Ok(())
            }
            Reply::Status(code) => {
                let (reason, body) = match code {
                    200 => ("OK", "ok"),
                    404 => ("Not Found", "no_service"),
                    500 => ("Internal Server Error", "boom"),
                    503 => ("Service Unavailable", "try later"),
                    _ => ("Status", ""),
                };
                write!(
                    w,
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                w.flush()?;
                Ok(())
            }
        }
    }
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}
