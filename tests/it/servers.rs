//! Small real servers on 127.0.0.1 for notification tests: an SMTP receiver speaking the SMTP
//! dialogue (EHLO, optional AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT) and an HTTP/1.1 receiver
//! with scripted answers. Both record what they got, time out idle clients, and stop when
//! dropped.

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

// ---------------------------------------------------------------- SMTP

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

/// How an SMTP receiver offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP only.
    None,
    /// Advertises STARTTLS and requires it before MAIL.
    StartTls,
    /// TLS from the first byte (smtps).
    Implicit,
}

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

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A line-oriented connection that can be upgraded to TLS in place.
struct Conn {
    raw: TcpStream,
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    tls: bool,
}

impl Conn {
    fn plain(raw: TcpStream) -> std::io::Result<Conn> {
        Ok(Conn {
            stream: Box::new(raw.try_clone()?),
            raw,
            buf: Vec::new(),
            tls: false,
        })
    }

    fn upgrade(&mut self) -> std::io::Result<()> {
        assert!(self.buf.is_empty(), "client pipelined data past STARTTLS");
        let conn = rustls::ServerConnection::new(tls_config()).map_err(std::io::Error::other)?;
        self.stream = Box::new(rustls::StreamOwned::new(conn, self.raw.try_clone()?));
        self.tls = true;
        Ok(())
    }

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

/// An SMTP receiver. With `auth`, it advertises AUTH PLAIN LOGIN and accepts only that
/// user and password.
pub struct SmtpServer {
    acceptor: Acceptor,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub fn start(auth: Option<(&str, &str)>) -> SmtpServer {
        SmtpServer::start_tls(auth, SmtpTls::None)
    }

    pub fn start_tls(auth: Option<(&str, &str)>, tls: SmtpTls) -> SmtpServer {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m2 = mails.clone();
        let auth = auth.map(|(u, p)| (u.to_string(), p.to_string()));
        let acceptor = Acceptor::start(move |conn| {
            let _ = smtp_session(conn, &m2, auth.as_ref(), tls);
        });
        SmtpServer { acceptor, mails }
    }

    pub fn port(&self) -> u16 {
        self.acceptor.addr.port()
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port())
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

fn smtp_session(
    raw: TcpStream,
    mails: &Mutex<Vec<Mail>>,
    auth: Option<&(String, String)>,
    tls: SmtpTls,
) -> std::io::Result<()> {
    let mut c = Conn::plain(raw)?;
    if tls == SmtpTls::Implicit {
        c.upgrade()?;
    }
    c.send("220 127.0.0.1 ESMTP recur-test\r\n")?;
    let mut mail = Mail {
        from: String::new(),
        rcpt: Vec::new(),
        auth_user: None,
        data: String::new(),
        tls: c.tls,
    };
    loop {
        let Some(line) = c.line()? else {
            return Ok(());
        };
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut ext = vec!["127.0.0.1"];
            if tls == SmtpTls::StartTls && !c.tls {
                ext.push("STARTTLS");
            }
            if auth.is_some() {
                ext.push("AUTH PLAIN LOGIN");
            }
            ext.push("8BITMIME");
            let n = ext.len();
            for (i, e) in ext.iter().enumerate() {
                c.send(&format!("250{}{e}\r\n", if i + 1 == n { " " } else { "-" }))?;
            }
        } else if upper == "STARTTLS" {
            c.send("220 2.0.0 Ready to start TLS\r\n")?;
            c.upgrade()?;
            mail.tls = true;
        } else if upper.starts_with("AUTH PLAIN") {
            let b64 = match cmd.split_whitespace().nth(2) {
                Some(b) => b.to_string(),
                None => {
                    c.send("334 \r\n")?;
                    c.line()?.unwrap_or_default().trim().to_string()
                }
            };
            let raw = decode_base64(&b64);
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let user = parts.get(1).cloned().unwrap_or_default();
            let pass = parts.get(2).cloned().unwrap_or_default();
            check_auth(&mut c, auth, &mut mail, user, pass)?;
        } else if upper.starts_with("AUTH LOGIN") {
            c.send("334 VXNlcm5hbWU6\r\n")?;
            let user = c.line()?.unwrap_or_default();
            let user = String::from_utf8_lossy(&decode_base64(user.trim())).into_owned();
            c.send("334 UGFzc3dvcmQ6\r\n")?;
            let pass = c.line()?.unwrap_or_default();
            let pass = String::from_utf8_lossy(&decode_base64(pass.trim())).into_owned();
            check_auth(&mut c, auth, &mut mail, user, pass)?;
        } else if upper.starts_with("MAIL FROM:") {
            if tls == SmtpTls::StartTls && !c.tls {
                c.send("530 5.7.0 Must issue a STARTTLS command first\r\n")?;
                continue;
            }
            if auth.is_some() && mail.auth_user.is_none() {
                c.send("530 5.7.0 Authentication required\r\n")?;
                continue;
            }
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

fn check_auth(
    w: &mut Conn,
    auth: Option<&(String, String)>,
    mail: &mut Mail,
    user: String,
    pass: String,
) -> std::io::Result<()> {
    match auth {
        Some((u, p)) if *u == user && *p == pass => {
            mail.auth_user = Some(user);
            w.send("235 2.7.0 Authentication successful\r\n")
        }
        _ => w.send("535 5.7.8 Authentication credentials invalid\r\n"),
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
