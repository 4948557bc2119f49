//! Rendering a [`Notification`] for each channel: email (subject, text and HTML parts), the
//! webhook JSON body, the Slack Block Kit message, and the rule's optional minijinja template.
//!
//! A template produces *plain text*; each channel then escapes that text for its own markup
//! (HTML-escaped in the HTML part, mrkdwn-escaped for Slack), so a template — or a value it
//! interpolates, such as a sample — can never inject markup or links.

use serde_json::{Value, json};

use super::Notification;
use crate::report::format_time;

/// The parts of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Checks a template's syntax; the error carries the line and byte range inside the template.
pub fn check_template(source: &str) -> Result<(), minijinja::Error> {
    let env = minijinja::Environment::new();
    env.template_from_str(source).map(|_| ())
}

/// The human text: the rule's template rendered with the notification's fields, else the
/// built-in text. A template that fails at render time (e.g. a filter applied to the wrong
/// type) falls back to the built-in text with the reason appended, so the alert still goes out.
pub fn human_text(n: &Notification) -> String {
    let Some(template) = n.template.as_deref() else {
        return n.text();
    };
    let env = minijinja::Environment::new();
    match env.render_str(template, to_jinja(&payload(n))) {
        Ok(s) => {
            let mut s = crate::redact::strip_controls_keep_newlines(&s);
            if !s.ends_with('\n') {
                s.push('\n');
            }
            if n.test { format!("[TEST] {s}") } else { s }
        }
        Err(e) => format!(
            "{}  (the rule's [alert] template failed to render: {})\n",
            n.text(),
            e
        ),
    }
}

/// The template context: a JSON value as a minijinja value.
fn to_jinja(v: &Value) -> minijinja::Value {
    use minijinja::Value as J;
    match v {
        Value::Null => J::from(()),
        Value::Bool(b) => J::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => J::from(i),
            (None, Some(u)) => J::from(u),
            _ => J::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => J::from(s.as_str()),
        Value::Array(a) => J::from(a.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Object(m) => J::from(
            m.iter()
                .map(|(k, v)| (k.clone(), to_jinja(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

/// The JSON document of webhooks and console JSON lines: every field of the notification plus
/// `text`, the human text.
pub fn payload(n: &Notification) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.remove("text");
    }
    v
}

/// The webhook body: [`payload`] with the rendered human text.
pub fn webhook(n: &Notification) -> Value {
    let mut v = payload(n);
    if let Value::Object(m) = &mut v {
        m.insert("text".into(), Value::String(human_text(n)));
    }
    v
}

fn t(x: Option<jiff::Timestamp>) -> String {
    x.map(format_time).unwrap_or_else(|| "-".into())
}

/// The labelled facts shown in HTML and Slack, in reading order.
fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Severity", n.severity.clone()),
        ("Verdict", n.verdict.clone()),
        (
            "Errors",
            format!(
                "{} in this episode (alert window {})",
                n.error_count, n.window
            ),
        ),
        ("First seen", t(n.first_seen)),
        ("Last seen", t(n.last_seen)),
        ("Fixed at", t(n.fixed_at)),
        (
            "Time since fix",
            n.since_fix.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Owner", n.owner.clone()),
        (
            "Action required",
            if n.action_required.is_empty() {
                "-".into()
            } else {
                n.action_required.clone()
            },
        ),
    ];
    if let Some(d) = n.deadline {
        f.push(("Deadline", format_time(d)));
    }
    f
}

/// Whether a link may be made clickable (no `javascript:` or other schemes).
fn linkable(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for Slack mrkdwn (the three characters Slack's formatting reserves).
pub fn mrkdwn_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The subject and both parts of an email.
pub fn email(n: &Notification) -> EmailContent {
    let subject = n.subject();
    let text = human_text(n);
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n");
    if n.test {
        h.push_str("<p><strong>TEST NOTIFICATION: no action is required.</strong></p>\n");
    }
    h.push_str(&format!("<h2>{}</h2>\n", html_escape(&subject)));
    h.push_str(&format!(
        "<p><strong>{}</strong>: {}</p>\n",
        html_escape(&n.remediation_id),
        html_escape(&n.title)
    ));
    if n.template.is_some() {
        h.push_str(&format!(
            "<div style=\"white-space:pre-wrap\">{}</div>\n",
            html_escape(text.trim_end())
        ));
    }
    h.push_str("<table cellpadding=\"4\">\n");
    for (k, v) in facts(n) {
        h.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            k,
            html_escape(&v)
        ));
    }
    let link = if linkable(&n.previous_analysis) {
        format!("<a href=\"{0}\">{0}</a>", html_escape(&n.previous_analysis))
    } else {
        html_escape(&n.previous_analysis)
    };
    h.push_str(&format!(
        "<tr><th align=\"left\">Previous analysis</th><td>{link}</td></tr>\n</table>\n"
    ));
    if !n.folded.is_empty() {
        h.push_str("<ul>\n");
        for f in &n.folded {
            h.push_str(&format!("<li>{}</li>\n", html_escape(f)));
        }
        h.push_str("</ul>\n");
    }
    if !n.samples.is_empty() {
        h.push_str("<h3>Sample events (redacted)</h3>\n");
        for s in &n.samples {
            h.push_str(&format!(
                "<pre style=\"white-space:pre-wrap\">{}</pre>\n",
                html_escape(s)
            ));
        }
    }
    h.push_str(&format!(
        "<p style=\"color:#888\">dedup key: {}</p>\n</body></html>\n",
        html_escape(&n.dedup_key)
    ));
    EmailContent {
        subject,
        text,
        html: h,
    }
}

/// Cuts `s` to `max` characters for Slack's per-block limits.
fn slack_cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The Slack incoming-webhook body: a header, the human text, the facts, the analysis link,
/// the samples and the dedup key, with `text` as the notification fallback.
pub fn slack(n: &Notification) -> Value {
    let subject = n.subject();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": slack_cut(&subject, 150)}
    })];
    let intro = if n.template.is_some() {
        mrkdwn_escape(&human_text(n))
    } else {
        format!(
            "*{}*: {}",
            mrkdwn_escape(&n.remediation_id),
            mrkdwn_escape(&n.title)
        )
    };
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": slack_cut(&intro, 3000)}
    }));
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": slack_cut(&format!("*{k}*\n{}", mrkdwn_escape(&v)), 2000)}))
        .collect();
    blocks.push(json!({"type": "section", "fields": fields}));
    let link = if linkable(&n.previous_analysis) && !n.previous_analysis.contains(['|', '<', '>']) {
        let url = mrkdwn_escape(&n.previous_analysis);
        format!("<{url}|{url}>")
    } else {
        mrkdwn_escape(&n.previous_analysis)
    };
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": slack_cut(&format!("*Previous analysis:* {link}"), 3000)}
    }));
    if !n.folded.is_empty() {
        let list: Vec<String> = n
            .folded
            .iter()
            .map(|f| format!("• {}", mrkdwn_escape(f)))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": slack_cut(&list.join("\n"), 3000)}
        }));
    }
    if !n.samples.is_empty() {
        // Backticks inside a sample would close the code block early.
        let body: Vec<String> = n
            .samples
            .iter()
            .map(|s| mrkdwn_escape(&s.replace('`', "'")))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": slack_cut(&format!("*Sample events (redacted)*\n```{}```", body.join("\n")), 3000)}
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("dedup key: {}", mrkdwn_escape(&n.dedup_key))}]
    }));
    json!({"text": mrkdwn_escape(&subject), "blocks": blocks})
}

/// The email `Message-ID` for a dedup key: the same key always gives the same id, so a resend
/// after a crash threads as (or is dropped as) the same message.
pub fn message_id(dedup_key: &str, from: &str) -> String {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>'))
        .filter(|d| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        })
        .unwrap_or("recur.invalid");
    format!(
        "<recur.{:032x}@{domain}>",
        xxhash_rust::xxh3::xxh3_128(dedup_key.as_bytes())
    )
}

#[cfg(test)]
mod tests;
