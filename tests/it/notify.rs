//! Notifications end to end: real SMTP and HTTP receivers on 127.0.0.1, the real binary,
//! content, redaction, dedup keys, retries with backoff, and `notify-test`.

use crate::harness::Workspace;
use crate::servers::{
    HttpServer, MailOptions, MailServer, Reply, SmtpsServer, closed_port, test_ca_path, wait_until,
};

const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const BEARER: &str = "s3cr3tBearerValue42";
const ANALYSIS: &str = "https://docs.example.com/incidents/NO_TOKEN_FIVE_WHYS.md";

/// A rule fixed at 2025-09-08T23:30Z notifying `channels`, with extra `[alert]` lines.
fn rule(channels: &str, extra: &str) -> String {
    format!(
        r#"
id = "WS_NO_TOKEN_001"
title = "WebSocket auth rejects connections"
severity = "critical"
owner = "auth-oncall@example.com"
analysis = "{ANALYSIS}"
action = "EXECUTE_CONFIGURATION_FIX"
[fix]
status = "fixed"
fixed_at = "2025-09-08T23:30:00Z"
deadline = "2025-09-09T04:00:00Z"
[scope]
environment = "staging"
[[signature]]
error_code = "NO_TOKEN"
[alert]
threshold = 2
window = "1h"
samples = 2
channels = [{channels}]
{extra}
"#
    )
}

/// Two recurrences carrying secrets: a JWT in free text and an Authorization header.
fn logs() -> String {
    let mut s = String::new();
    for (i, t) in ["2025-09-10T08:00:00Z", "2025-09-10T08:05:00Z"]
        .iter()
        .enumerate()
    {
        s.push_str(&format!(
            "{{\"timestamp\":\"{t}\",\"environment\":\"staging\",\"error_code\":\"NO_TOKEN\",\"event_id\":\"e{i}\",\"message\":\"rejected client with {JWT}\",\"request\":\"GET /ws HTTP/1.1\\r\\nAuthorization: Bearer {BEARER}\",\"headers\":{{\"Authorization\":\"Bearer {BEARER}\",\"Cookie\":\"sid=abc123456\"}}}}\n"
        ));
    }
    s
}

fn setup(ws: &Workspace, config: &str, channels: &str, extra: &str) {
    ws.write("recur.toml", config);
    ws.rule("ws", &rule(channels, extra));
    ws.write("logs/app.log", logs());
}

fn assert_no_secret(what: &str, s: &str) {
    for secret in [JWT, BEARER, "eyJhbGci", "abc123456"] {
        assert!(!s.contains(secret), "{what} leaks `{secret}`:\n{s}");
    }
}

#[test]
fn email_webhook_and_slack_carry_the_content_masked_and_once() {
    let smtp = MailServer::with_auth("recur-user", "pa55word");
    let hook = HttpServer::start(&[]);
    let slack = HttpServer::start(&[]);
    let ws = Workspace::new();
    let config = format!(
        r#"
default_channels = ["hook"]
[notify]
timeout = "5s"
[channels.mail]
type = "email"
url = "{}"
tls = "starttls"
ca_file = "{}"
from = "recur@example.com"
to = ["oncall@example.com", "lead@example.com"]
username_env = "T_SMTP_USER"
password_env = "T_SMTP_PASSWORD"
[channels.hook]
type = "webhook"
url = "{}"
[channels.chat]
type = "slack"
url_env = "T_SLACK_URL"
"#,
        smtp.url(),
        test_ca_path().display(),
        hook.url("/recur")
    );
    setup(&ws, &config, r#""mail", "hook", "chat""#, "");
    let run = || {
        ws.recur()
            .args(["scan", "logs"])
            .env("T_SMTP_USER", "recur-user")
            .env("T_SMTP_PASSWORD", "pa55word")
            .env("T_SLACK_URL", slack.url("/services/T000/B000/XXXX"))
            .run()
    };
    let out = run().code(1);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);

    // Email.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m.auth_user.as_deref(), Some("recur-user"));
    assert!(m.tls, "authenticated after STARTTLS");
    assert_eq!(m.from, "recur@example.com");
    assert_eq!(m.rcpt, ["oncall@example.com", "lead@example.com"]);
    assert_eq!(m.header("from").as_deref(), Some("recur@example.com"));
    assert!(
        m.header("to").unwrap().contains("lead@example.com"),
        "{:?}",
        m.header("to")
    );
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{:?}",
        m.header("content-type")
    );
    let subject = m.header("subject").unwrap();
    assert!(subject.contains("WS_NO_TOKEN_001"), "{subject}");
    assert!(subject.contains("2 errors"), "{subject}");
    assert!(subject.contains("recurring"), "{subject}");
    let text = m.part("text/plain").expect("text part");
    let html = m.part("text/html").expect("html part");
    for want in [
        "auth-oncall@example.com",
        "EXECUTE_CONFIGURATION_FIX",
        "deadline: 2025-09-09 04:00:00Z",
        "first seen 2025-09-10 08:00:00Z",
        "last seen 2025-09-10 08:05:00Z",
        "2 errors in this episode (alert window 1h)",
        ANALYSIS,
        "sample 1:",
        "sample 2:",
        "[REDACTED]",
    ] {
        assert!(text.contains(want), "text part lacks `{want}`:\n{text}");
    }
    assert!(
        html.contains(&format!("<a href=\"{ANALYSIS}\">")),
        "analysis link not clickable:\n{html}"
    );
    assert!(html.contains("Time since fix"), "{html}");
    assert!(html.contains("&quot;"), "samples are HTML-escaped:\n{html}");
    assert_no_secret("email", &m.data);
    assert_no_secret("email text", &text);
    assert_no_secret("email html", &html);

    // Webhook.
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/recur");
    let body = r.json();
    for k in [
        "kind",
        "remediation_id",
        "title",
        "severity",
        "error_count",
        "window",
        "first_seen",
        "last_seen",
        "fixed_at",
        "since_fix",
        "owner",
        "action_required",
        "previous_analysis",
        "deadline",
        "samples",
        "dedup_key",
    ] {
        assert!(body.get(k).is_some(), "webhook body lacks `{k}`: {body}");
    }
    assert_eq!(body["kind"], "open");
    assert_eq!(body["error_count"], 2);
    assert_eq!(body["previous_analysis"], ANALYSIS);
    assert_eq!(body["samples"].as_array().unwrap().len(), 2);
    let key = body["dedup_key"].as_str().unwrap();
    assert!(key.starts_with("WS_NO_TOKEN_001/"), "{key}");
    assert_eq!(r.header("Idempotency-Key"), Some(key));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_no_secret("webhook", &r.body);

    // Email Message-ID from the same key.
    assert_eq!(
        m.header("message-id").unwrap(),
        recur::sink::render::message_id(key, "recur@example.com")
    );
    assert_eq!(m.header("x-recur-dedup-key").as_deref(), Some(key));

    // Slack.
    let sreqs = slack.requests();
    assert_eq!(sreqs.len(), 1);
    assert_eq!(sreqs[0].path, "/services/T000/B000/XXXX");
    let sb = sreqs[0].json();
    assert!(sb["text"].as_str().unwrap().contains("WS_NO_TOKEN_001"));
    let blocks = sb["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        sreqs[0].body.contains(&format!("<{ANALYSIS}|")),
        "slack link: {}",
        sreqs[0].body
    );
    assert_no_secret("slack", &sreqs[0].body);

    // The same scan again: nothing new anywhere.
    run().code(0);
    let out = ws
        .recur()
        .args(["scan", "--rescan", "logs"])
        .env("T_SLACK_URL", slack.url("/x"))
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(hook.requests().len(), 1);
    assert_eq!(slack.requests().len(), 1);
}

fn hook_config(url: &str, extra: &str) -> String {
    format!(
        r#"
[notify]
timeout = "3s"
{extra}
[channels.hook]
type = "webhook"
url = "{url}"
"#
    )
}

#[test]
fn refused_webhook_is_retried_with_backoff_and_the_same_key() {
    let hook = HttpServer::start(&[Reply::Status(503)]);
    let ws = Workspace::new();
    setup(&ws, &hook_config(&hook.url("/h"), ""), r#""hook""#, "");
    let out = ws.recur().args(["scan", "logs"]).run().code(1);
    assert!(
        out.stderr.contains("channel `hook` (webhook): HTTP 503"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("attempt 1/8"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(&hook.url("")),
        "URL leaked: {}",
        out.stderr
    );

    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .code(0)
        .json();
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["attempts"], 1);
    assert!(list[0]["next_attempt"].is_string());

    // Backoff honoured: a flush right away sends nothing.
    let out = ws.recur().args(["outbox", "flush"]).run().code(0);
    assert!(out.stdout.contains("0 sent"), "{}", out.stdout);
    assert_eq!(hook.requests().len(), 1);

    // --force retries now; the receiver is back.
    let out = ws
        .recur()
        .args(["outbox", "flush", "--force"])
        .run()
        .code(0);
    assert!(out.stdout.contains("1 sent"), "{}", out.stdout);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2);
    let k1 = reqs[0].header("Idempotency-Key").unwrap();
    assert_eq!(Some(k1), reqs[1].header("Idempotency-Key"));
    assert_eq!(reqs[0].json()["dedup_key"], reqs[1].json()["dedup_key"]);
    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .json();
    assert_eq!(list[0]["status"], "sent");

    // Nothing left to send.
    ws.recur()
        .args(["outbox", "flush", "--force"])
        .run()
        .code(0);
    assert_eq!(hook.requests().len(), 2);
}

#[test]
fn a_send_lost_before_marking_is_resent_with_the_same_key() {
    // The receiver gets the whole request, then the connection dies before recur learns the
    // outcome: as far as recur knows, the send may not have happened.
    let hook = HttpServer::start(&[Reply::Hangup]);
    let ws = Workspace::new();
    setup(&ws, &hook_config(&hook.url("/h"), ""), r#""hook""#, "");
    let out = ws.recur().args(["scan", "logs"]).run().code(1);
    assert!(out.stderr.contains("channel `hook`"), "{}", out.stderr);
    ws.recur()
        .args(["outbox", "flush", "--force"])
        .run()
        .code(0);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].header("Idempotency-Key").is_some());
    assert_eq!(
        reqs[0].header("Idempotency-Key"),
        reqs[1].header("Idempotency-Key")
    );
}

#[test]
fn redaction_added_to_the_config_applies_to_samples_stored_before() {
    let hook = HttpServer::start(&[]);
    let ws = Workspace::new();
    setup(&ws, &hook_config(&hook.url("/h"), ""), r#""hook""#, "");
    ws.recur()
        .args(["scan", "--no-notify", "logs"])
        .run()
        .code(1);
    // The policy grows after the samples were stored.
    let config = hook_config(&hook.url("/h"), "")
        + "[redact]\nfields = [\"error_code\"]\npatterns = ['rejected client']\n";
    ws.write("recur.toml", config);
    ws.recur().args(["outbox", "flush"]).run().code(0);
    let body = hook.requests()[0].json();
    let samples = body["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    for s in samples {
        let s = s.as_str().unwrap();
        assert!(!s.contains("rejected client"), "{s}");
        assert!(!s.contains("NO_TOKEN"), "{s}");
        assert!(s.contains(r#""error_code":"[REDACTED]""#), "{s}");
    }
}

#[test]
fn gives_up_after_max_attempts_and_status_shows_it() {
    let hook = HttpServer::start(&[Reply::Status(500), Reply::Status(500), Reply::Status(500)]);
    let ws = Workspace::new();
    setup(
        &ws,
        &hook_config(&hook.url("/h"), "max_attempts = 2"),
        r#""hook""#,
        "",
    );
    ws.recur().args(["scan", "logs"]).run().code(1);
    let out = ws
        .recur()
        .args(["outbox", "flush", "--force"])
        .run()
        .code(2);
    assert!(
        out.stderr.contains("gave up after 2 attempts"),
        "{}",
        out.stderr
    );
    let out = ws.recur().args(["status"]).run();
    assert!(
        out.stdout.contains("FAILED after every attempt"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("via hook: 2 attempts, last error: channel `hook` (webhook): HTTP 500"),
        "{}",
        out.stdout
    );
    let j = ws.recur().args(["status", "--format", "json"]).run().json();
    assert_eq!(j["failed_notifications"].as_array().unwrap().len(), 1);
    assert_eq!(j["failed_deliveries"][0]["channel"], "hook");
    // Given up means given up: a forced flush does not try again.
    ws.recur()
        .args(["outbox", "flush", "--force"])
        .run()
        .code(0);
    assert_eq!(hook.requests().len(), 2);
}

#[test]
fn unreachable_mail_server_names_the_channel_and_does_not_block_the_webhook() {
    let hook = HttpServer::start(&[]);
    let ws = Workspace::new();
    let port = closed_port();
    let config = format!(
        r#"
[notify]
timeout = "3s"
[channels.mail]
type = "email"
url = "smtp://127.0.0.1:{port}"
tls = "none"
from = "recur@example.com"
to = ["oncall@example.com"]
[channels.hook]
type = "webhook"
url = "{}"
"#,
        hook.url("/h")
    );
    setup(&ws, &config, r#""mail", "hook""#, "");
    let out = ws.recur().args(["scan", "logs"]).run().code(1);
    assert!(
        out.stderr.contains(&format!(
            "channel `mail` (email): TCP connect to 127.0.0.1:{port} refused"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("WS_NO_TOKEN_001"),
        "the scan report is still printed"
    );
    assert_eq!(hook.requests().len(), 1);
    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .json();
    let by = |c: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == c)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(by("mail"), "pending");
    assert_eq!(by("hook"), "sent");
}

#[test]
fn no_notify_records_and_a_flush_sends_later() {
    let hook = HttpServer::start(&[]);
    let ws = Workspace::new();
    setup(&ws, &hook_config(&hook.url("/h"), ""), r#""hook""#, "");
    ws.recur()
        .args(["scan", "--no-notify", "logs"])
        .run()
        .code(1);
    assert!(hook.requests().is_empty());
    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .json();
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["attempts"], 0);
    ws.recur().args(["outbox", "flush"]).run().code(0);
    assert_eq!(hook.requests().len(), 1);
}

#[test]
fn template_overrides_the_text_escaped_per_channel() {
    let smtp = MailServer::plain();
    let slack = HttpServer::start(&[]);
    let ws = Workspace::new();
    let config = format!(
        r#"
[channels.mail]
type = "email"
url = "{}"
tls = "none"
from = "recur@example.com"
to = ["oncall@example.com"]
[channels.chat]
type = "slack"
url = "{}"
"#,
        smtp.url(),
        slack.url("/s")
    );
    let extra = r#"template = '''
<b>{{ remediation_id }}</b> is back: {{ error_count }} errors since {{ first_seen }} & counting.
Read {{ previous_analysis }}'''"#;
    setup(&ws, &config, r#""mail", "chat""#, extra);
    ws.recur().arg("check").run().code(0);
    ws.recur().args(["scan", "logs"]).run().code(1);
    wait_until("one mail", || smtp.mails().len() == 1);
    let m = &smtp.mails()[0];
    let text = m.part("text/plain").unwrap();
    assert!(
        text.starts_with(
            "<b>WS_NO_TOKEN_001</b> is back: 2 errors since 2025-09-10T08:00:00Z & counting."
        ),
        "{text}"
    );
    let html = m.part("text/html").unwrap();
    assert!(
        html.contains("&lt;b&gt;WS_NO_TOKEN_001&lt;/b&gt; is back"),
        "{html}"
    );
    assert!(html.contains("&amp; counting"), "{html}");
    assert!(!html.contains("<b>WS_NO_TOKEN_001"), "{html}");
    let body = &slack.requests()[0].body;
    assert!(
        body.contains("&lt;b&gt;WS_NO_TOKEN_001&lt;/b&gt; is back"),
        "{body}"
    );
}

#[test]
fn check_reports_a_template_syntax_error_with_its_location() {
    let ws = Workspace::new();
    ws.rule("ws", &rule(r#""console""#, "template = '{{ error_count '"));
    let out = ws.recur().arg("check").run().code(1);
    assert!(out.stderr.contains("invalid template"), "{}", out.stderr);
    assert!(out.stderr.contains("rules/ws.toml:21:"), "{}", out.stderr);
}

#[test]
fn notify_test_reports_success_and_precise_failures() {
    let smtp = MailServer::with_auth("u", "right");
    let hook = HttpServer::start(&[Reply::Status(404)]);
    let ws = Workspace::new();
    let dead = closed_port();
    ws.write(
        "recur.toml",
        format!(
            r#"
[notify]
timeout = "3s"
[channels.mail]
type = "email"
url = "{0}"
tls = "starttls"
ca_file = "{1}"
from = "recur@example.com"
to = ["oncall@example.com"]
username_env = "T_USER"
password_env = "T_PASS"
[channels.dead]
type = "email"
url = "smtp://127.0.0.1:{dead}"
tls = "none"
from = "recur@example.com"
to = ["oncall@example.com"]
[channels.hook]
type = "webhook"
url_env = "T_HOOK"
"#,
            smtp.url(),
            test_ca_path().display()
        ),
    );
    let secret_url = hook.url("/very-secret-path-token");

    // Email accepted.
    let out = ws
        .recur()
        .args(["notify-test", "mail"])
        .env("T_USER", "u")
        .env("T_PASS", "right")
        .run()
        .code(0);
    assert!(
        out.stdout
            .contains("sent a test notification through channel `mail`"),
        "{}",
        out.stdout
    );
    let m = &smtp.mails()[0];
    assert!(
        m.header("subject").unwrap().starts_with("[TEST]"),
        "{:?}",
        m.header("subject")
    );
    assert!(m.part("text/html").unwrap().contains("TEST NOTIFICATION"));

    // Auth rejected, and the password never shows.
    let out = ws
        .recur()
        .args(["notify-test", "mail"])
        .env("T_USER", "u")
        .env("T_PASS", "wrong-password")
        .run()
        .code(2);
    assert!(
        out.stderr.contains("authentication rejected"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("535"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-password"), "{}", out.stderr);

    // Missing credentials are named.
    let out = ws.recur().args(["notify-test", "mail"]).run().code(2);
    assert!(
        out.stderr.contains("environment variable T_USER"),
        "{}",
        out.stderr
    );

    // Connection refused.
    let out = ws.recur().args(["notify-test", "dead"]).run().code(2);
    assert!(
        out.stderr
            .contains(&format!("TCP connect to 127.0.0.1:{dead} refused")),
        "{}",
        out.stderr
    );

    // HTTP status with its code; the URL from the environment never shows.
    let out = ws
        .recur()
        .args(["notify-test", "hook"])
        .env("T_HOOK", &secret_url)
        .run()
        .code(2);
    assert!(
        out.stderr.contains("channel `hook` (webhook): HTTP 404"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("very-secret-path-token"),
        "{}",
        out.stderr
    );
    let out = ws
        .recur()
        .args(["notify-test", "hook"])
        .env("T_HOOK", &secret_url)
        .run()
        .code(0);
    assert!(out.stdout.contains("`hook` (webhook)"), "{}", out.stdout);
    let body = hook.requests()[1].json();
    assert_eq!(body["test"], true);

    // Unknown channel.
    let out = ws.recur().args(["notify-test", "nope"]).run().code(2);
    assert!(
        out.stderr.contains("channel `nope` is not defined"),
        "{}",
        out.stderr
    );

    // A dead webhook: refused, URL scrubbed.
    let dead_url = format!("http://127.0.0.1:{dead}/another-secret-path");
    let out = ws
        .recur()
        .args(["notify-test", "hook"])
        .env("T_HOOK", &dead_url)
        .run()
        .code(2);
    assert!(
        out.stderr.contains("refused") || out.stderr.contains("connect"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("another-secret-path"),
        "{}",
        out.stderr
    );
}

#[test]
fn console_is_the_default_and_json_lines_with_format_json() {
    let ws = Workspace::new();
    ws.rule("ws", &rule("", ""));
    ws.write("logs/app.log", logs());
    let out = ws
        .recur()
        .args(["scan", "--format", "json", "logs"])
        .run()
        .code(1);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line on stderr:\n{}", out.stderr));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["remediation_id"], "WS_NO_TOKEN_001");
    assert_no_secret("console", &out.stderr);
}

#[test]
fn tls_modes_fail_clearly_against_a_plain_server() {
    // Only the failure paths: implicit TLS against a plain SMTP greeting, and STARTTLS
    // required but not offered. Both exercise the TLS stack (crypto provider included)
    // without panicking.
    let smtp = MailServer::plain();
    let ws = Workspace::new();
    let port = smtp.port();
    ws.write(
        "recur.toml",
        format!(
            r#"
[notify]
timeout = "3s"
[channels.implicit]
type = "email"
url = "smtps://127.0.0.1:{port}"
from = "recur@example.com"
to = ["oncall@example.com"]
[channels.starttls]
type = "email"
url = "smtp://127.0.0.1:{port}"
tls = "starttls"
from = "recur@example.com"
to = ["oncall@example.com"]
"#
        ),
    );
    let out = ws.recur().args(["notify-test", "implicit"]).run().code(2);
    assert!(
        out.stderr.contains("channel `implicit` (email): TLS"),
        "{}",
        out.stderr
    );
    let out = ws.recur().args(["notify-test", "starttls"]).run().code(2);
    assert!(
        out.stderr.contains("channel `starttls` (email)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.to_ascii_lowercase().contains("starttls") || out.stderr.contains("TLS"),
        "{}",
        out.stderr
    );
    assert!(smtp.mails().is_empty());
}

#[test]
fn a_failing_channel_is_tried_once_per_run_and_the_rest_wait() {
    let hook = HttpServer::start(&[]);
    let dead = HttpServer::start(&[Reply::Status(503); 8]);
    let ws = Workspace::new();
    ws.write(
        "recur.toml",
        format!(
            r#"
default_channels = ["dead", "hook"]
[channels.dead]
type = "webhook"
url = "{}"
[channels.hook]
type = "webhook"
url = "{}"
"#,
            dead.url("/d"),
            hook.url("/h")
        ),
    );
    // Two remediations, so two notifications per channel.
    ws.rule("a", &rule("", ""));
    ws.rule(
        "b",
        &rule("", "").replace("WS_NO_TOKEN_001", "WS_NO_TOKEN_002"),
    );
    ws.write("logs/app.log", logs());
    let out = ws
        .recur()
        .args(["scan", "--format", "json", "logs"])
        .run()
        .code(1);
    let j = out.json();
    assert_eq!(j["delivery"]["sent"], 2, "{}", j["delivery"]);
    assert_eq!(j["delivery"]["retrying"], 1, "{}", j["delivery"]);
    assert_eq!(j["delivery"]["deferred"], 1, "{}", j["delivery"]);
    assert_eq!(dead.requests().len(), 1);
    assert_eq!(hook.requests().len(), 2);
    let keys: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.header("Idempotency-Key").unwrap().to_string())
        .collect();
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn starttls_and_implicit_tls_deliver_with_a_private_ca() {
    let starttls = MailServer::with_auth("u", "p");
    let implicit = SmtpsServer::start();
    let ws = Workspace::new();
    let ca = test_ca_path();
    ws.write(
        "recur.toml",
        format!(
            r#"
[notify]
timeout = "5s"
[channels.starttls]
type = "email"
url = "smtp://127.0.0.1:{}"
tls = "starttls"
from = "recur@example.com"
to = ["oncall@example.com"]
username_env = "T_USER"
password_env = "T_PASS"
ca_file = "{}"
[channels.implicit]
type = "email"
url = "smtps://127.0.0.1:{}"
from = "recur@example.com"
to = ["oncall@example.com"]
ca_file = "{}"
[channels.untrusted]
type = "email"
url = "smtps://127.0.0.1:{}"
from = "recur@example.com"
to = ["oncall@example.com"]
"#,
            starttls.port(),
            ca.display(),
            implicit.port(),
            ca.display(),
            implicit.port()
        ),
    );
    ws.recur()
        .args(["notify-test", "starttls"])
        .env("T_USER", "u")
        .env("T_PASS", "p")
        .run()
        .code(0);
    let m = &starttls.mails()[0];
    assert!(m.tls, "the mail travelled after STARTTLS");
    assert_eq!(m.auth_user.as_deref(), Some("u"));
    assert!(
        m.part("text/plain")
            .unwrap()
            .contains("RECUR_TEST_NOTIFICATION")
    );

    ws.recur().args(["notify-test", "implicit"]).run().code(0);
    assert!(implicit.mails()[0].tls);

    // Without the private CA the certificate is not trusted, and the failure says TLS.
    let out = ws.recur().args(["notify-test", "untrusted"]).run().code(2);
    assert!(
        out.stderr.contains("channel `untrusted` (email): TLS"),
        "{}",
        out.stderr
    );
    assert_eq!(implicit.mails().len(), 1);
}

/// Secrets that only a sensitive-name rule finds: an object under `authorization`, a numeric
/// key, `name=value` pairs in free text, and a `[redact] fields` name written as a pair.
#[test]
fn sensitive_objects_numbers_and_text_pairs_arrive_masked_on_every_channel() {
    const BASIC: &str = "dXNlcjpwYXNzd29yZA";
    const PRIVATE: &str = "MIIEvQIBADANBgkqhkiG9w0";
    const SSH: &str = "AAAAC3NzaC1lZDI1NTE5";
    const API: &str = "987654321";
    const TENANT: &str = "acme-tenant-42";
    let secrets = [BASIC, PRIVATE, SSH, API, TENANT, "Basic"];
    let smtp = MailServer::plain();
    let hook = HttpServer::start(&[]);
    let ws = Workspace::new();
    ws.write(
        "recur.toml",
        format!(
            r#"
[notify]
timeout = "5s"
[redact]
fields = ["tenant"]
[channels.mail]
type = "email"
url = "{}"
tls = "none"
from = "recur@example.com"
to = ["oncall@example.com"]
[channels.hook]
type = "webhook"
url = "{}"
"#,
            smtp.url(),
            hook.url("/h")
        ),
    );
    ws.rule("ws", &rule(r#""mail", "hook", "console""#, ""));
    let mut logs = String::new();
    for (i, t) in ["2025-09-10T08:00:00Z", "2025-09-10T08:05:00Z"]
        .iter()
        .enumerate()
    {
        logs.push_str(&format!(
            r#"{{"timestamp":"{t}","environment":"staging","error_code":"NO_TOKEN","event_id":"e{i}","authorization":{{"scheme":"Basic","value":"{BASIC}"}},"authorization_present":true,"api_key":{API},"keyboard":"us","message":"handshake failed private_key={PRIVATE} ssh_key={SSH} tenant={TENANT} attempt=3"}}"#
        ));
        logs.push('\n');
    }
    ws.write("logs/app.log", logs);
    let out = ws
        .recur()
        .args(["scan", "--format", "json", "logs"])
        .run()
        .code(1);

    let check = |what: &str, s: &str| {
        for secret in secrets {
            assert!(!s.contains(secret), "{what} leaks `{secret}`:\n{s}");
        }
        assert!(s.contains("[REDACTED]"), "{what}: nothing masked:\n{s}");
    };
    // Console, JSON lines on stderr.
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line on stderr:\n{}", out.stderr));
    check("console", line);
    // Webhook: the samples, parsed back.
    let body = hook.requests()[0].json();
    check("webhook", &hook.requests()[0].body);
    let sample: serde_json::Value =
        serde_json::from_str(body["samples"][0].as_str().unwrap()).unwrap();
    assert_eq!(sample["authorization"], "[REDACTED]");
    assert_eq!(sample["api_key"], "[REDACTED]");
    assert_eq!(sample["authorization_present"], true, "flags stay readable");
    assert_eq!(sample["keyboard"], "us", "`key` is a word, not a substring");
    assert_eq!(
        sample["message"],
        "handshake failed private_key=[REDACTED] ssh_key=[REDACTED] tenant=[REDACTED] attempt=3"
    );
    // Email: both parts and the raw message.
    wait_until("one mail", || smtp.mails().len() == 1);
    let m = &smtp.mails()[0];
    check("email", &m.data);
    let text = m.part("text/plain").unwrap();
    check("email text", &text);
    assert!(text.contains("private_key=[REDACTED]"), "{text}");
    check("email html", &m.part("text/html").unwrap());
}

/// The `next_attempt` of the only outbox row of `channel`.
fn next_attempt(ws: &Workspace, channel: &str) -> jiff::Timestamp {
    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .code(0)
        .json();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == channel)
        .unwrap_or_else(|| panic!("no outbox row for {channel}: {list}"));
    row["next_attempt"]
        .as_str()
        .unwrap_or_else(|| panic!("no next attempt: {row}"))
        .parse()
        .unwrap()
}

/// Waits (bounded) until the wall clock has passed `t`.
fn wait_past(t: jiff::Timestamp) {
    wait_until("the backoff to pass", || jiff::Timestamp::now() > t);
}

fn outbox_row(ws: &Workspace, channel: &str) -> serde_json::Value {
    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .code(0)
        .json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == channel)
        .cloned()
        .unwrap()
}

#[test]
fn a_later_scan_retries_a_refused_webhook_once_the_configured_backoff_has_passed() {
    let hook = HttpServer::start(&[Reply::Status(503)]);
    let ws = Workspace::new();
    setup(
        &ws,
        &hook_config(&hook.url("/h"), "backoff = \"2s\""),
        r#""hook""#,
        "",
    );
    let out = ws.recur().args(["scan", "logs"]).run().code(1);
    assert!(out.stderr.contains("HTTP 503"), "{}", out.stderr);
    let due = next_attempt(&ws, "hook");

    // A scan inside the backoff leaves the row alone. Checked only when this scan provably
    // ran before the backoff ended, so a slow machine cannot make the test fail.
    ws.recur().args(["scan", "logs"]).run();
    if jiff::Timestamp::now() < due {
        assert_eq!(
            hook.requests().len(),
            1,
            "retried before the backoff passed"
        );
    }

    // After the backoff, the next scan (nothing new in the logs) retries by itself.
    wait_past(due);
    ws.recur().args(["scan", "logs"]).run().code(0);
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].header("Idempotency-Key"),
        reqs[1].header("Idempotency-Key")
    );
    let row = outbox_row(&ws, "hook");
    assert_eq!(row["status"], "sent", "{row}");
    assert_eq!(row["attempts"], 2, "{row}");

    // And only once.
    ws.recur().args(["scan", "logs"]).run().code(0);
    assert_eq!(hook.requests().len(), 2);
}

#[test]
fn email_is_retried_by_later_scans_while_the_server_is_down_then_refusing_then_back() {
    let port = closed_port();
    let ws = Workspace::new();
    let config = format!(
        r#"
[notify]
timeout = "3s"
backoff = "1s"
[channels.mail]
type = "email"
url = "smtp://127.0.0.1:{port}"
tls = "none"
from = "recur@example.com"
to = ["oncall@example.com"]
"#
    );
    setup(&ws, &config, r#""mail""#, "");

    // Down: nothing listens.
    let out = ws.recur().args(["scan", "logs"]).run().code(1);
    assert!(
        out.stderr
            .contains(&format!("TCP connect to 127.0.0.1:{port} refused")),
        "{}",
        out.stderr
    );
    let due = next_attempt(&ws, "mail");

    // Up, on the same port, but refusing the first message with a temporary error.
    let smtp = MailServer::start(MailOptions {
        port,
        refuse_first: 1,
        ..Default::default()
    });
    wait_past(due);
    let out = ws.recur().args(["scan", "logs"]).run();
    assert!(out.stderr.contains("451"), "{}", out.stderr);
    assert_eq!(smtp.attempts(), 1);
    assert!(smtp.mails().is_empty());
    let row = outbox_row(&ws, "mail");
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["attempts"], 2, "{row}");

    // Accepting now: the backoff (doubled) passes and a scan delivers.
    wait_past(next_attempt(&ws, "mail"));
    ws.recur().args(["scan", "logs"]).run().code(0);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert!(
        m.header("subject").unwrap().contains("WS_NO_TOKEN_001"),
        "{:?}",
        m.header("subject")
    );
    let key = m.header("x-recur-dedup-key").unwrap();
    assert_eq!(
        m.header("message-id").unwrap(),
        recur::sink::render::message_id(&key, "recur@example.com")
    );
    let row = outbox_row(&ws, "mail");
    assert_eq!(row["status"], "sent", "{row}");
    assert_eq!(row["attempts"], 3, "{row}");
    ws.recur().args(["scan", "logs"]).run().code(0);
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn concurrent_drains_send_each_notification_once() {
    // A slow receiver keeps the first drain inside its first send while the second starts:
    // without a claim on each delivery both would send both notifications.
    let hook = HttpServer::start(&[Reply::Slow(std::time::Duration::from_secs(2)); 4]);
    let ws = Workspace::new();
    ws.write("recur.toml", hook_config(&hook.url("/h"), ""));
    ws.rule("a", &rule(r#""hook""#, ""));
    ws.rule(
        "b",
        &rule(r#""hook""#, "").replace("WS_NO_TOKEN_001", "WS_NO_TOKEN_002"),
    );
    ws.write("logs/app.log", logs());
    ws.recur()
        .args(["scan", "--no-notify", "logs"])
        .run()
        .code(1);
    assert_eq!(outbox_rows(&ws), 2);

    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| {
            ws.recur()
                .args(["outbox", "flush", "--format", "json"])
                .run()
        });
        wait_until("the first drain to be sending", || {
            !hook.requests().is_empty()
        });
        let second = ws
            .recur()
            .args(["outbox", "flush", "--format", "json"])
            .run();
        (first.join().unwrap(), second)
    });
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let sent = first.json()["sent"].as_u64().unwrap() + second.json()["sent"].as_u64().unwrap();
    assert_eq!(
        sent, 2,
        "first: {}\nsecond: {}",
        first.stdout, second.stdout
    );
    let reqs = hook.requests();
    let mut keys: Vec<&str> = reqs
        .iter()
        .map(|r| r.header("Idempotency-Key").unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys.len(), 2, "a notification was sent twice: {keys:?}");
    assert_ne!(keys[0], keys[1]);
    let list = ws
        .recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "sent"),
        "{list}"
    );
}

fn outbox_rows(ws: &Workspace) -> usize {
    ws.recur()
        .args(["outbox", "list", "--format", "json"])
        .run()
        .code(0)
        .json()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn check_never_echoes_receiver_urls_or_passwords() {
    let ws = Workspace::new();
    ws.rule("ws", &rule(r#""hook""#, ""));
    ws.write(
        "recur.toml",
        r#"[channels.hook]
type = "webhook"
url = "ftp://hooks.example.com/services/T0/B0/very-secret-token"
[channels.chat]
type = "slack"
url = "https://hooks.slack.com/services/T1/B1/another-secret"
url_env = "RECUR_SLACK_WEBHOOK"
[channels.mail]
type = "email"
url = "smtp://bob:hunter2@mail.example.com:25"
tls = "bogus"
from = "recur@example.com"
to = ["oncall@example.com"]
password = "pa55word-in-the-file"
"#,
    );
    let out = ws.recur().arg("check").run().code(1);
    for secret in [
        "very-secret-token",
        "hooks.example.com",
        "another-secret",
        "hunter2",
        "pa55word",
    ] {
        assert!(
            !out.stderr.contains(secret),
            "`{secret}` echoed:\n{}",
            out.stderr
        );
    }
    insta::assert_snapshot!("check_masks_secrets", out.stderr);
}
