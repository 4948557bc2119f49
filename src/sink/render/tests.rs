use super::*;
use crate::track::IntentKind;

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn sample() -> Notification {
    Notification {
        kind: IntentKind::Open,
        remediation_id: "WS_NO_TOKEN_001".into(),
        title: "WebSocket auth rejects <all> connections & more".into(),
        severity: "critical".into(),
        verdict: "recurring".into(),
        error_count: 3,
        window: "1h".into(),
        first_seen: Some(ts("2025-09-10T08:00:00Z")),
        last_seen: Some(ts("2025-09-10T08:20:00Z")),
        fixed_at: Some(ts("2025-09-08T23:30:00Z")),
        since_fix: Some("1d 8h 30m".into()),
        owner: "auth-oncall@example.com".into(),
        action_required: "EXECUTE_CONFIGURATION_FIX".into(),
        previous_analysis: "https://docs.example.com/a.md?x=1&y=2".into(),
        deadline: Some(ts("2025-09-09T04:00:00Z")),
        samples: vec![
            r#"{"message":"No JWT <script>","headers":{"Authorization":"[REDACTED]"}}"#.into(),
            "text with `backticks`".into(),
        ],
        dedup_key: "WS_NO_TOKEN_001/2025-09-10T08:00:00Z/0".into(),
        episode_start: ts("2025-09-10T08:00:00Z"),
        folded: vec![],
        test: false,
        template: None,
    }
}

#[test]
fn webhook_json() {
    insta::assert_json_snapshot!(webhook(&sample()));
}

#[test]
fn slack_json() {
    insta::assert_json_snapshot!(slack(&sample()));
}

#[test]
fn email_text_and_html() {
    let c = email(&sample());
    insta::assert_snapshot!("email_subject", c.subject);
    insta::assert_snapshot!("email_text", c.text);
    insta::assert_snapshot!("email_html", c.html);
}

#[test]
fn html_part_escapes_everything_and_links_only_http() {
    let c = email(&sample());
    assert!(c.html.contains("&lt;all&gt; connections &amp; more"));
    assert!(c.html.contains("&lt;script&gt;"));
    assert!(!c.html.contains("<script>"));
    assert!(
        c.html
            .contains(r#"<a href="https://docs.example.com/a.md?x=1&amp;y=2">"#)
    );
    let mut n = sample();
    n.previous_analysis = "javascript:alert(1)".into();
    assert!(!email(&n).html.contains("<a href"));
    assert!(!slack(&n).to_string().contains("<javascript"));
}

#[test]
fn template_text_is_escaped_per_channel() {
    let mut n = sample();
    n.template = Some("<i>{{ remediation_id }}</i> x{{ error_count }} {{ owner | upper }}".into());
    assert_eq!(
        human_text(&n),
        "<i>WS_NO_TOKEN_001</i> x3 AUTH-ONCALL@EXAMPLE.COM\n"
    );
    let c = email(&n);
    assert_eq!(c.text, human_text(&n));
    assert!(
        c.html
            .contains("&lt;i&gt;WS_NO_TOKEN_001&lt;/i&gt; x3 AUTH-ONCALL@EXAMPLE.COM")
    );
    let s = slack(&n).to_string();
    assert!(s.contains("&lt;i&gt;WS_NO_TOKEN_001&lt;/i&gt; x3"), "{s}");
    assert_eq!(webhook(&n)["text"], human_text(&n));
}

#[test]
fn a_template_failing_at_render_time_falls_back_to_the_built_in_text() {
    let mut n = sample();
    n.template = Some("{{ error_count | nosuchfilter }}".into());
    let t = human_text(&n);
    assert!(t.starts_with(&n.text()), "{t}");
    assert!(t.contains("template failed to render"), "{t}");
}

#[test]
fn template_syntax_errors_have_a_location() {
    let e = check_template("ok\n{% if %}").unwrap_err();
    assert_eq!(e.line(), Some(2));
    assert!(e.range().is_some());
    assert!(check_template("{{ a }} {% for s in samples %}{{ s }}{% endfor %}").is_ok());
}

#[test]
fn message_id_is_stable_per_key() {
    let a = message_id("R/1/0", "recur@example.com");
    assert_eq!(a, message_id("R/1/0", "Recur <recur@example.com>"));
    assert_ne!(a, message_id("R/1/1", "recur@example.com"));
    assert!(
        a.starts_with("<recur.") && a.ends_with("@example.com>"),
        "{a}"
    );
    assert!(message_id("k", "nobody").ends_with("@recur.invalid>"));
}

#[test]
fn mrkdwn_escape_reserved() {
    assert_eq!(
        mrkdwn_escape("<@U1> & <!here>"),
        "&lt;@U1&gt; &amp; &lt;!here&gt;"
    );
}

#[test]
fn scrub_masks_secrets_longest_first() {
    let msg = "POST https://hooks.example.com/services/T/B/SECRET failed for /services/T/B/SECRET";
    let s = crate::sink::scrub(
        msg,
        &[
            "https://hooks.example.com/services/T/B/SECRET",
            "/services/T/B/SECRET",
            "x",
        ],
    );
    assert_eq!(s, "POST [REDACTED] failed for [REDACTED]");
}
