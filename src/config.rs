//! `recur.toml`: input settings, state location, notification channels and redaction.
//!
//! ```toml
//! default_channels = ["oncall"]          # used by rules whose [alert] names no channel
//!
//! [input]
//! format         = "auto"                # auto|json|gcp|docker|cri|logfmt|text
//! time_fields    = ["timestamp", "time"] # tried in order
//! timezone       = "UTC"                 # for timestamps without an offset (IANA name)
//! id_fields      = ["insertId"]          # event identity; else a hash of the line
//! max_line_bytes = 1048576               # longer lines are counted and skipped
//!
//! [state]
//! path = ".recur/state.db"
//!
//! [notify]
//! max_notifications = 20                 # per run; the rest fold into one digest
//! max_attempts      = 8                  # sends before an outbox entry is given up
//! timeout           = "10s"
//! backoff           = "30s"              # wait after the first failed send; doubles, max 1h
//!
//! [redact]
//! fields   = ["session_id"]              # extra field names to mask in samples
//! patterns = ['acct-[0-9]+']             # extra regexes to mask
//!
//! [channels.oncall]
//! type         = "email"                 # email|webhook|slack|console
//! url          = "smtps://smtp.example.com:465"
//! from         = "recur@example.com"
//! to           = ["oncall@example.com"]
//! username_env = "SMTP_USER"             # credentials come from the environment
//! password_env = "SMTP_PASSWORD"
//! ca_file      = "/etc/ssl/private-ca.pem"  # optional extra trusted roots (PEM)
//! ```
//!
//! Like rule files, the whole file is checked and every error reported with its location.
//! Secrets are never written in the file: credentials, and optionally receiver URLs, are named
//! by environment variable and read when sending.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use toml_edit::{Document, TableLike};

use crate::decode::{DecodeConfig, Format};
use crate::diag::reader::{FILE_START, Reader, key_span, list, regex_reason, suggest};
use crate::diag::{Diagnostic, SourceText};
use crate::matcher::CoverageMode;
use crate::rule::LoadedRules;

/// The channel name that always exists: printing to the terminal needs no configuration.
pub const CONSOLE: &str = "console";
pub const DEFAULT_STATE_PATH: &str = ".recur/state.db";
pub const DEFAULT_MAX_LINE_BYTES: usize = 1_048_576;
/// Lines are buffered whole, so the cap bounds memory; a gibibyte is already absurd for a log
/// line.
const MAX_MAX_LINE_BYTES: i64 = 1 << 30;

const TOP_KEYS: &[&str] = &[
    "default_channels",
    "input",
    "state",
    "notify",
    "redact",
    "coverage",
    "channels",
];
const INPUT_KEYS: &[&str] = &[
    "format",
    "time_fields",
    "timezone",
    "id_fields",
    "max_line_bytes",
];
const STATE_KEYS: &[&str] = &["path", "samples_per_hour"];
const NOTIFY_KEYS: &[&str] = &["max_notifications", "max_attempts", "timeout", "backoff"];
const REDACT_KEYS: &[&str] = &["fields", "patterns"];
const COVERAGE_KEYS: &[&str] = &["mode"];
const COVERAGE_MODES: &[&str] = &["sampled", "exact"];
const FORMATS: &[&str] = &["auto", "json", "gcp", "docker", "cri", "logfmt", "text"];
const CHANNEL_TYPES: &[&str] = &["email", "webhook", "slack", "console"];
const EMAIL_KEYS: &[&str] = &[
    "type",
    "url",
    "tls",
    "from",
    "to",
    "username_env",
    "password_env",
    "ca_file",
];
const WEBHOOK_KEYS: &[&str] = &["type", "url", "url_env", "headers_env"];
const SLACK_KEYS: &[&str] = &["type", "url", "url_env"];
const CONSOLE_KEYS: &[&str] = &["type"];

/// The whole `recur.toml`. [`Config::default`] is the configuration without a file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The file this was loaded from; `None` for the defaults.
    pub path: Option<PathBuf>,
    /// Channels for rules whose `[alert]` names none; empty means the console.
    pub default_channels: Vec<String>,
    pub input: InputConfig,
    pub state: StateConfig,
    pub notify: NotifyConfig,
    pub redact: RedactConfig,
    pub coverage: CoverageConfig,
    /// `[channels.NAME]` tables by name.
    pub channels: BTreeMap<String, ChannelConfig>,
}

/// `[input]`: how records are decoded and framed.
#[derive(Debug, Clone, PartialEq)]
pub struct InputConfig {
    pub format: Format,
    pub time_fields: Vec<String>,
    /// Zone for timestamps without an offset.
    pub timezone: TimeZone,
    pub id_fields: Vec<String>,
    /// Longer lines are counted as invalid and skipped without being buffered whole.
    pub max_line_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        let d = DecodeConfig::default();
        InputConfig {
            format: d.format,
            time_fields: d.time_fields,
            timezone: d.zone,
            id_fields: d.id_fields,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// `[state]`: where the embedded store lives (relative paths are relative to the working
/// directory, like every path recur is given).
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    pub path: PathBuf,
    /// Redacted samples stored per remediation and hour of occurrences (the rest are stored
    /// without one); `None`: the rule's `[alert] samples`. A frequent error then costs no
    /// redaction and little storage per occurrence, and every episode still has samples.
    pub samples_per_hour: Option<u32>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: PathBuf::from(DEFAULT_STATE_PATH),
            samples_per_hour: None,
        }
    }
}

/// `[coverage]`: how in-scope events (the evidence that a fix is verified) are kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CoverageConfig {
    /// `sampled` (default): the hours in which each scope was seen and the latest in-scope
    /// time, from a few records per block of input. `exact`: every in-scope event counted,
    /// at the cost of decoding every record that shows a scope's literal.
    pub mode: CoverageMode,
}

/// `[notify]`: limits on sending.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// Episodes notified individually per run; the rest are folded into one digest.
    pub max_notifications: u32,
    /// Attempts before an outbox entry is given up (and reported).
    pub max_attempts: u32,
    /// Per-send network timeout.
    pub timeout: SignedDuration,
    /// Wait before retrying after the first failed send; it doubles with each further failure,
    /// up to an hour (or this value, when it is longer).
    pub backoff: SignedDuration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            max_notifications: 20,
            max_attempts: 8,
            timeout: SignedDuration::from_secs(10),
            backoff: SignedDuration::from_secs(30),
        }
    }
}

/// `[redact]`: masking added to the built-in rules (tokens, JWTs, auth headers, cookies, fields
/// named like token/secret/password/key).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RedactConfig {
    /// Extra field names whose values are masked.
    pub fields: Vec<String>,
    /// Extra regexes whose matches are masked; each is known to compile.
    pub patterns: Vec<String>,
}

/// How an email channel secures its SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Tls,
}

impl TlsMode {
    pub const NAMES: &'static [&'static str] = &["none", "starttls", "tls"];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
        }
    }
}

/// One `[channels.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelConfig {
    Email {
        /// `smtp://host[:port]` or `smtps://host[:port]`.
        url: String,
        /// Default: `tls` for `smtps://`, `starttls` for `smtp://`.
        tls: TlsMode,
        from: String,
        to: Vec<String>,
        username_env: Option<String>,
        password_env: Option<String>,
        /// Extra trusted root certificates (PEM), for relays with a private CA.
        ca_file: Option<PathBuf>,
    },
    /// A generic JSON webhook; exactly one of `url` and `url_env` is set.
    Webhook {
        url: Option<String>,
        url_env: Option<String>,
        /// Header name → environment variable holding its value (e.g. an auth token).
        headers_env: BTreeMap<String, String>,
    },
    /// A Slack-compatible incoming webhook; exactly one of `url` and `url_env` is set.
    Slack {
        url: Option<String>,
        url_env: Option<String>,
    },
    Console,
}

impl ChannelConfig {
    /// The `type` word of this channel.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Email { .. } => "email",
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Console => "console",
        }
    }
}

impl Config {
    /// Reads and validates `path`. A file that cannot be read is one diagnostic without a span.
    pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) => Err(vec![Diagnostic::new(
                path,
                None,
                format!("cannot read config file: {e}"),
            )]),
        }
    }

    /// Validates the text of a `recur.toml`, returning every error found in it.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
        let mut r = Reader::new(path);
        let Some(doc) = r.parse(text) else {
            return Err(r.finish());
        };
        let config = read_config(&mut r, &doc);
        match config {
            Some(mut c) if !r.has_errors() => {
                c.path = Some(path.to_path_buf());
                Ok(c)
            }
            _ => {
                if !r.has_errors() {
                    let d = r.at(None, "config file could not be read");
                    r.push(d);
                }
                Err(r.finish())
            }
        }
    }

    /// The decode settings from `[input]` (defaults where the file says nothing).
    pub fn decode_config(&self) -> DecodeConfig {
        DecodeConfig {
            format: self.input.format,
            time_fields: self.input.time_fields.clone(),
            zone: self.input.timezone.clone(),
            id_fields: self.input.id_fields.clone(),
        }
    }

    /// True when `name` can be used in a rule's `channels`: defined here, or `console`.
    pub fn has_channel(&self, name: &str) -> bool {
        name == CONSOLE || self.channels.contains_key(name)
    }

    /// The name this config is known by in messages (`recur.toml` path, or "the defaults").
    pub fn display_name(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the default configuration".to_string(),
        }
    }
}

fn read_config(r: &mut Reader<'_>, doc: &Document<&str>) -> Option<Config> {
    let root: &dyn TableLike = doc.as_table();
    r.check_keys(root, TOP_KEYS, "recur.toml");
    let input = section(r, root, "input", INPUT_KEYS, read_input);
    let state = section(r, root, "state", STATE_KEYS, |r, t| {
        let d = StateConfig::default();
        let path = r.optional(t, "path", d.path, |r, i| {
            r.non_empty_str("path", i).map(PathBuf::from)
        });
        let samples = r.optional(t, "samples_per_hour", None, |r, i| {
            r.int("samples_per_hour", i, 0, u32::MAX as i64)
                .map(|n| Some(n as u32))
        });
        Some(StateConfig {
            path: path?,
            samples_per_hour: samples?,
        })
    });
    let notify = section(r, root, "notify", NOTIFY_KEYS, read_notify);
    let redact = section(r, root, "redact", REDACT_KEYS, read_redact);
    let coverage = section(r, root, "coverage", COVERAGE_KEYS, |r, t| {
        r.optional(t, "mode", CoverageConfig::default(), |r, i| {
            r.one_of("mode", i, COVERAGE_MODES).map(|m| CoverageConfig {
                mode: if m == "exact" {
                    CoverageMode::Exact
                } else {
                    CoverageMode::Sampled
                },
            })
        })
    });
    let channels = read_channels(r, root);
    let default_channels = match (root.get("default_channels"), &channels) {
        (None, _) => Some(Vec::new()),
        (Some(item), channels) => r.str_array("default_channels", item).and_then(|names| {
            let mut ok = true;
            for (name, span) in &names {
                // Without a valid `[channels]` we cannot tell; its errors are reported already.
                if let Some(channels) = channels
                    && name != CONSOLE
                    && !channels.contains_key(name)
                {
                    undefined_channel(r, name, span.clone(), channels.keys(), true);
                    ok = false;
                }
            }
            ok.then(|| names.into_iter().map(|(n, _)| n).collect())
        }),
    };
    Some(Config {
        path: None,
        default_channels: default_channels?,
        input: input?,
        state: state?,
        notify: notify?,
        redact: redact?,
        coverage: coverage?,
        channels: channels?,
    })
}

/// An optional fixed table: its keys checked, then read by `read` (defaults when absent).
fn section<T: Default>(
    r: &mut Reader<'_>,
    root: &dyn TableLike,
    name: &str,
    keys: &[&str],
    read: impl FnOnce(&mut Reader<'_>, &dyn TableLike) -> Option<T>,
) -> Option<T> {
    let Some(item) = root.get(name) else {
        return Some(T::default());
    };
    let t = r.table(name, item)?;
    r.check_keys(t, keys, &format!("`[{name}]`"));
    read(r, t)
}

fn read_input(r: &mut Reader<'_>, t: &dyn TableLike) -> Option<InputConfig> {
    let d = InputConfig::default();
    let format = r.optional(t, "format", d.format, |r, i| {
        r.one_of("format", i, FORMATS).map(format_of)
    });
    let time_fields = r.optional(t, "time_fields", d.time_fields, |r, i| {
        non_empty_names(r, "time_fields", i)
    });
    let timezone = r.optional(t, "timezone", d.timezone, |r, i| {
        let name = r.str("timezone", i)?;
        if name.eq_ignore_ascii_case("utc") {
            return Some(TimeZone::UTC);
        }
        match TimeZone::get(name) {
            Ok(tz) => Some(tz),
            Err(e) => {
                let zones: Vec<String> = jiff::tz::db()
                    .available()
                    .map(|z| z.as_str().to_string())
                    .collect();
                let close = suggest(name, zones.iter().map(String::as_str));
                let hint = match close {
                    Some(z) => format!("did you mean `{z}`?"),
                    // An empty list means no time zone database at all: say what failed.
                    None if zones.is_empty() => format!("{e}"),
                    None => "use an IANA name such as \"Europe/Paris\", or \"UTC\"".to_string(),
                };
                let d = r
                    .at(i.span(), format!("unknown time zone `{name}`"))
                    .with_label("not in the time zone database")
                    .with_hint(hint);
                r.push(d);
                None
            }
        }
    });
    let id_fields = r.optional(t, "id_fields", d.id_fields, |r, i| {
        non_empty_names(r, "id_fields", i)
    });
    let max_line_bytes = r.optional(t, "max_line_bytes", d.max_line_bytes, |r, i| {
        r.int("max_line_bytes", i, 1, MAX_MAX_LINE_BYTES)
            .and_then(|n| usize::try_from(n).ok())
    });
    Some(InputConfig {
        format: format?,
        time_fields: time_fields?,
        timezone: timezone?,
        id_fields: id_fields?,
        max_line_bytes: max_line_bytes?,
    })
}

fn format_of(name: &str) -> Format {
    match name {
        "json" => Format::Json,
        "gcp" => Format::Gcp,
        "docker" => Format::Docker,
        "cri" => Format::Cri,
        "logfmt" => Format::Logfmt,
        "text" => Format::Text,
        _ => Format::Auto,
    }
}

fn read_notify(r: &mut Reader<'_>, t: &dyn TableLike) -> Option<NotifyConfig> {
    let d = NotifyConfig::default();
    let max = i64::from(u32::MAX);
    let max_notifications = r.optional(t, "max_notifications", d.max_notifications, |r, i| {
        r.int("max_notifications", i, 0, max)
            .and_then(|n| u32::try_from(n).ok())
    });
    let max_attempts = r.optional(t, "max_attempts", d.max_attempts, |r, i| {
        r.int("max_attempts", i, 1, max)
            .and_then(|n| u32::try_from(n).ok())
    });
    let timeout = r.optional(t, "timeout", d.timeout, |r, i| r.duration("timeout", i));
    let backoff = r.optional(t, "backoff", d.backoff, |r, i| r.duration("backoff", i));
    Some(NotifyConfig {
        max_notifications: max_notifications?,
        max_attempts: max_attempts?,
        timeout: timeout?,
        backoff: backoff?,
    })
}

fn read_redact(r: &mut Reader<'_>, t: &dyn TableLike) -> Option<RedactConfig> {
    let fields = r.optional(t, "fields", Vec::new(), |r, i| {
        non_empty_names(r, "fields", i)
    });
    let patterns = r.optional(t, "patterns", Vec::new(), |r, i| {
        let list = r.str_array("patterns", i)?;
        let mut ok = true;
        for (p, span) in &list {
            if let Err(e) = regex::Regex::new(p) {
                let d = r
                    .at(span.clone(), format!("invalid regex: {}", regex_reason(&e)))
                    .with_label("invalid regex");
                r.push(d);
                ok = false;
            }
        }
        ok.then(|| list.into_iter().map(|(p, _)| p).collect())
    });
    Some(RedactConfig {
        fields: fields?,
        patterns: patterns?,
    })
}

/// An array of non-blank strings (field names, environment variables …).
fn non_empty_names(r: &mut Reader<'_>, key: &str, item: &toml_edit::Item) -> Option<Vec<String>> {
    let list = r.str_array(key, item)?;
    let mut ok = true;
    for (s, span) in &list {
        if s.trim().is_empty() {
            let d = r
                .at(span.clone(), format!("empty name in `{key}`"))
                .with_label("empty");
            r.push(d);
            ok = false;
        }
    }
    ok.then(|| list.into_iter().map(|(s, _)| s).collect())
}

fn read_channels(
    r: &mut Reader<'_>,
    root: &dyn TableLike,
) -> Option<BTreeMap<String, ChannelConfig>> {
    let Some(item) = root.get("channels") else {
        return Some(BTreeMap::new());
    };
    let t = r.table("channels", item)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, item) in t.iter() {
        let Some(ct) = r.table(&format!("channels.{name}"), item) else {
            ok = false;
            continue;
        };
        let header = item.span().or_else(|| key_span(t, name, item));
        match read_channel(r, ct, header) {
            Some(c) => {
                out.insert(name.to_string(), c);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_channel(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    header: Option<Range<usize>>,
) -> Option<ChannelConfig> {
    let kind = r
        .required(
            t,
            "type",
            header.clone(),
            format!("add the channel's type: one of {}", list(CHANNEL_TYPES)),
        )
        .and_then(|i| r.one_of("type", i, CHANNEL_TYPES))?;
    match kind {
        "email" => {
            r.check_keys(t, EMAIL_KEYS, "an email channel");
            let url = r
                .required(
                    t,
                    "url",
                    header.clone(),
                    "add the SMTP server, e.g. `url = \"smtps://smtp.example.com:465\"`",
                )
                .and_then(|i| {
                    let s = r.str("url", i)?;
                    if s.starts_with("smtp://") || s.starts_with("smtps://") {
                        Some((s.to_string(), i))
                    } else {
                        let d = r
                            .at(
                                i.span(),
                                "an email channel's `url` must start with `smtp://` or `smtps://`",
                            )
                            .with_label("not an SMTP URL")
                            .with_hint(
                                "`smtps://host:465` for TLS, `smtp://host:587` for STARTTLS",
                            );
                        r.push(d);
                        None
                    }
                });
            let implied = url.as_ref().map(|(u, _)| {
                if u.starts_with("smtps://") {
                    TlsMode::Tls
                } else {
                    TlsMode::StartTls
                }
            });
            let tls = match t.get("tls") {
                None => implied,
                Some(i) => r.one_of("tls", i, TlsMode::NAMES).map(|s| match s {
                    "none" => TlsMode::None,
                    "starttls" => TlsMode::StartTls,
                    _ => TlsMode::Tls,
                }),
            };
            if let (Some(TlsMode::Tls), Some(mode)) = (implied, tls)
                && mode != TlsMode::Tls
            {
                let d = r
                    .at(
                        t.get("tls").and_then(|i| i.span()),
                        format!(
                            "`tls = \"{}\"` contradicts the `smtps://` URL",
                            mode.as_str()
                        ),
                    )
                    .with_label("conflicting TLS mode")
                    .with_hint("`smtps://` always uses TLS; use `smtp://` for STARTTLS or no TLS");
                r.push(d);
            }
            let from = r
                .required(
                    t,
                    "from",
                    header.clone(),
                    "add the sender, e.g. `from = \"recur@example.com\"`",
                )
                .and_then(|i| {
                    let s = r.non_empty_str("from", i)?;
                    mailbox(r, s, i.span()).then_some(s)
                });
            let to = r
                .required(
                    t,
                    "to",
                    header.clone(),
                    "add the recipients, e.g. `to = [\"oncall@example.com\"]`",
                )
                .and_then(|i| {
                    let spans = r.str_array("to", i)?;
                    let list = non_empty_names(r, "to", i)?;
                    let mut ok = true;
                    for (addr, span) in &spans {
                        ok &= mailbox(r, addr, span.clone());
                    }
                    if !ok {
                        return None;
                    }
                    if list.is_empty() {
                        let d = r
                            .at(i.span(), "`to` lists no recipient")
                            .with_label("empty");
                        r.push(d);
                        return None;
                    }
                    Some(list)
                });
            let username_env = env_name(r, t, "username_env");
            let password_env = env_name(r, t, "password_env");
            let ca_file = r.optional(t, "ca_file", None, |r, i| {
                r.non_empty_str("ca_file", i)
                    .map(|s| Some(PathBuf::from(s)))
            });
            Some(ChannelConfig::Email {
                url: url?.0,
                tls: tls?,
                from: from?.to_string(),
                to: to?,
                username_env: username_env?,
                password_env: password_env?,
                ca_file: ca_file?,
            })
        }
        "webhook" => {
            r.check_keys(t, WEBHOOK_KEYS, "a webhook channel");
            let (url, url_env) = url_or_env(r, t, header)?;
            let headers_env = r.optional(t, "headers_env", BTreeMap::new(), |r, i| {
                let ht = r.table("headers_env", i)?;
                let mut map = BTreeMap::new();
                let mut ok = true;
                for (name, v) in ht.iter() {
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                    if !valid {
                        let d = r
                            .at(
                                key_span(ht, name, v),
                                format!("`{name}` is not a valid HTTP header name"),
                            )
                            .with_label("invalid header name");
                        r.push(d);
                        ok = false;
                    }
                    match r.non_empty_str(name, v) {
                        Some(env) => {
                            map.insert(name.to_string(), env.to_string());
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(map)
            });
            Some(ChannelConfig::Webhook {
                url,
                url_env,
                headers_env: headers_env?,
            })
        }
        "slack" => {
            r.check_keys(t, SLACK_KEYS, "a slack channel");
            let (url, url_env) = url_or_env(r, t, header)?;
            Some(ChannelConfig::Slack { url, url_env })
        }
        _ => {
            r.check_keys(t, CONSOLE_KEYS, "a console channel");
            Some(ChannelConfig::Console)
        }
    }
}

/// Checks an email address (`a@example.com` or `Name <a@example.com>`), reporting it if bad.
fn mailbox(r: &mut Reader<'_>, addr: &str, span: Option<Range<usize>>) -> bool {
    if addr.trim().is_empty() {
        return true; // reported as an empty name already
    }
    match addr.parse::<lettre::message::Mailbox>() {
        Ok(_) => true,
        Err(e) => {
            let d = r
                .at(span, format!("`{addr}` is not an email address: {e}"))
                .with_label("invalid address")
                .with_hint("write `user@example.com` or `Name <user@example.com>`");
            r.push(d);
            false
        }
    }
}

/// An optional environment-variable name.
fn env_name(r: &mut Reader<'_>, t: &dyn TableLike, key: &str) -> Option<Option<String>> {
    r.optional(t, key, None, |r, i| {
        r.non_empty_str(key, i).map(|s| Some(s.to_string()))
    })
}

/// Webhook and Slack receivers: exactly one of `url` (an http(s) URL) and `url_env`.
fn url_or_env(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    header: Option<Range<usize>>,
) -> Option<(Option<String>, Option<String>)> {
    let url = r.optional(t, "url", None, |r, i| {
        let s = r.str("url", i)?;
        if s.starts_with("https://") || s.starts_with("http://") {
            Some(Some(s.to_string()))
        } else {
            let d = r
                .at(i.span(), "`url` must start with `https://` or `http://`")
                .with_label("not an HTTP URL");
            r.push(d);
            None
        }
    });
    let url_env = env_name(r, t, "url_env");
    match (t.get("url"), t.get("url_env")) {
        (None, None) => {
            r.missing(
                "url",
                header,
                "add `url_env = \"VARIABLE\"` naming the environment variable that holds the \
                 receiver URL (or `url = \"https://…\"`)",
            );
            None
        }
        (Some(_), Some(e)) => {
            let d = r
                .at(
                    key_span(t, "url_env", e),
                    "both `url` and `url_env` are set",
                )
                .with_label("set only one")
                .with_hint("keep `url_env` so the receiver URL stays out of the file");
            r.push(d);
            None
        }
        _ => Some((url?, url_env?)),
    }
}

/// Reports a channel name that is not defined (`[channels.NAME]`), with a suggestion.
fn undefined_channel<'a>(
    r: &mut Reader<'_>,
    name: &str,
    span: Option<Range<usize>>,
    defined: impl Iterator<Item = &'a String> + Clone,
    config_loaded: bool,
) {
    let candidates = defined
        .clone()
        .map(String::as_str)
        .chain(std::iter::once(CONSOLE));
    let hint = match suggest(name, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None if config_loaded => format!("define it in recur.toml as `[channels.{name}]`"),
        None => {
            format!("no recur.toml was loaded; define the channel there as `[channels.{name}]`")
        }
    };
    let d = r
        .at(span, format!("unknown channel `{name}`"))
        .with_label("not defined in [channels]")
        .with_hint(hint);
    r.push(d);
}

/// Checks that every channel named in a rule's `[alert] channels` exists in `config` (or is
/// `console`). The spans are found again in the rule's text, since the model keeps none.
pub fn validate_rule_channels(rules: &LoadedRules, config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rem in &rules.remediations {
        let unknown: Vec<&String> = rem
            .alert
            .channels
            .iter()
            .filter(|c| !config.has_channel(c))
            .collect();
        if unknown.is_empty() {
            continue;
        }
        let source = rules.source(&rem.path);
        let mut r = Reader::new(&rem.path);
        for name in unknown {
            let span = source.and_then(|s| channel_span(s, name));
            undefined_channel(
                &mut r,
                name,
                span,
                config.channels.keys(),
                config.path.is_some(),
            );
        }
        out.extend(r.finish());
    }
    out
}

/// The span of `name` inside `[alert] channels` in a rule file's text.
fn channel_span(source: &SourceText, name: &str) -> Option<Range<usize>> {
    let doc = Document::parse(source.text.as_str()).ok()?;
    let channels = doc.get("alert")?.get("channels")?.as_array()?;
    channels
        .iter()
        .find(|v| v.as_str() == Some(name))
        .and_then(|v| v.span())
        .or(Some(FILE_START))
}

#[cfg(test)]
mod tests;
