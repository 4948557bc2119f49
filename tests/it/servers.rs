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

/// An SMTP receiver. With `auth`, it advertises AUTH PLAIN LOGIN and accepts only that
/// user and password.
pub struct SmtpServer {
    acceptor: Acceptor,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub fn start(auth: Option<(&str, &str)>) -> SmtpServer {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m2 = mails.clone();
        let auth = auth.map(|(u, p)| (u.to_string(), p.to_string()));
        let acceptor = Acceptor::start(move |conn| {
            let _ = smtp_session(conn, &m2, auth.as_ref());
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
    conn: TcpStream,
    mails: &Mutex<Vec<Mail>>,
    auth: Option<&(String, String)>,
) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(b"220 127.0.0.1 ESMTP recur-test\r\n")?;
    let mut mail = Mail {
        from: String::new(),
        rcpt: Vec::new(),
        auth_user: None,
        data: String::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if auth.is_some() {
                w.write_all(b"250-127.0.0.1\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")?;
            } else {
                w.write_all(b"250-127.0.0.1\r\n250 8BITMIME\r\n")?;
            }
        } else if upper.starts_with("AUTH PLAIN") {
            let b64 = match cmd.split_whitespace().nth(2) {
                Some(b) => b.to_string(),
                None => {
                    w.write_all(b"334 \r\n")?;
                    line.clear();
                    r.read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            let raw = decode_base64(&b64);
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let (user, pass) = (
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default(),
            );
            check_auth(&mut w, auth, &mut mail, user, pass)?;
        } else if upper.starts_with("AUTH LOGIN") {
            w.write_all(b"334 VXNlcm5hbWU6\r\n")?;
            line.clear();
            r.read_line(&mut line)?;
            let user = String::from_utf8_lossy(&decode_base64(line.trim())).into_owned();
            w.write_all(b"334 UGFzc3dvcmQ6\r\n")?;
            line.clear();
            r.read_line(&mut line)?;
            let pass = String::from_utf8_lossy(&decode_base64(line.trim())).into_owned();
            check_auth(&mut w, auth, &mut mail, user, pass)?;
        } else if upper.starts_with("MAIL FROM:") {
            if auth.is_some() && mail.auth_user.is_none() {
                w.write_all(b"530 5.7.0 Authentication required\r\n")?;
                continue;
            }
            mail.from = cmd[10..].trim().to_string();
            w.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt.push(cmd[8..].trim().to_string());
            w.write_all(b"250 OK\r\n")?;
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(l);
            }
            mail.data = data;
            mails.lock().unwrap().push(mail.clone());
            w.write_all(b"250 OK queued\r\n")?;
        } else if upper == "QUIT" {
            w.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 OK\r\n")?;
        } else {
            w.write_all(b"502 Command not implemented\r\n")?;
        }
    }
}

fn check_auth(
    w: &mut TcpStream,
    auth: Option<&(String, String)>,
    mail: &mut Mail,
    user: String,
    pass: String,
) -> std::io::Result<()> {
    match auth {
        Some((u, p)) if *u == user && *p == pass => {
            mail.auth_user = Some(user);
            w.write_all(b"235 2.7.0 Authentication successful\r\n")
        }
        _ => w.write_all(b"535 5.7.8 Authentication credentials invalid\r\n"),
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
