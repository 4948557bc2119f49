use super::*;
use crate::diag::render;

fn path() -> &'static Path {
    Path::new("recur.toml")
}

fn ok(text: &str) -> Config {
    match Config::parse(path(), text) {
        Ok(c) => c,
        Err(d) => panic!("{}", render(&d, &[SourceText::new(path(), text)], false)),
    }
}

fn one_err(text: &str) -> (Diagnostic, (usize, usize)) {
    let d = match Config::parse(path(), text) {
        Ok(c) => panic!("expected an error, parsed {c:?}"),
        Err(d) => d,
    };
    assert_eq!(
        d.len(),
        1,
        "{}",
        render(&d, &[SourceText::new(path(), text)], false)
    );
    let d = d.into_iter().next().unwrap();
    let lc = d.location(text).expect("a span");
    (d, lc)
}

const FULL: &str = r#"default_channels = ["oncall", "console"]

[input]
format         = "json"
time_fields    = ["ts", "meta.time"]
timezone       = "utc"
id_fields      = ["insertId"]
max_line_bytes = 65536

[state]
path = "/var/lib/recur/state.db"

[notify]
max_notifications = 5
max_attempts      = 3
timeout           = "30s"
retry_after       = "5s"

[redact]
fields   = ["session_id"]
patterns = ['acct-[0-9]+']

[channels.oncall]
type         = "email"
url          = "smtps://smtp.example.com:465"
from         = "recur@example.com"
to           = ["oncall@example.com", "lead@example.com"]
username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"

[channels.hooks]
type        = "webhook"
url_env     = "HOOK_URL"
headers_env = { Authorization = "HOOK_TOKEN" }

[channels.chat]
type = "slack"
url  = "https://hooks.slack.example.com/services/x"

[channels.term]
type = "console"
"#;

#[test]
fn parses_a_full_config() {
    let c = ok(FULL);
    assert_eq!(c.path.as_deref(), Some(path()));
    assert_eq!(c.default_channels, ["oncall", "console"]);
    assert_eq!(c.input.format, Format::Json);
    assert_eq!(c.input.time_fields, ["ts", "meta.time"]);
    assert_eq!(c.input.timezone, TimeZone::UTC);
    assert_eq!(c.input.id_fields, ["insertId"]);
    assert_eq!(c.input.max_line_bytes, 65536);
    assert_eq!(c.state.path, PathBuf::from("/var/lib/recur/state.db"));
    assert_eq!(
        c.notify,
        NotifyConfig {
            max_notifications: 5,
            max_attempts: 3,
            timeout: SignedDuration::from_secs(30),
            retry_after: SignedDuration::from_secs(5),
        }
    );
    assert_eq!(c.redact.fields, ["session_id"]);
    assert_eq!(c.redact.patterns, ["acct-[0-9]+"]);
    assert_eq!(
        c.channels["oncall"],
        ChannelConfig::Email {
            url: "smtps://smtp.example.com:465".into(),
            tls: TlsMode::Tls,
            from: "recur@example.com".into(),
            to: vec!["oncall@example.com".into(), "lead@example.com".into()],
            username_env: Some("SMTP_USER".into()),
            password_env: Some("SMTP_PASSWORD".into()),
            ca_file: None,
        }
    );
    assert_eq!(
        c.channels["hooks"],
        ChannelConfig::Webhook {
            url: None,
            url_env: Some("HOOK_URL".into()),
            headers_env: [("Authorization".to_string(), "HOOK_TOKEN".to_string())].into(),
        }
    );
    assert_eq!(
        c.channels["chat"],
        ChannelConfig::Slack {
            url: Some("https://hooks.slack.example.com/services/x".into()),
            url_env: None
        }
    );
    assert_eq!(c.channels["term"], ChannelConfig::Console);
    assert!(c.has_channel("console") && c.has_channel("chat") && !c.has_channel("nope"));

    let dc = c.decode_config();
    assert_eq!(dc.format, Format::Json);
    assert_eq!(dc.time_fields, ["ts", "meta.time"]);
    assert_eq!(dc.id_fields, ["insertId"]);
}

#[test]
fn defaults_without_a_file_or_with_an_empty_one() {
    let d = Config::default();
    assert_eq!(d.path, None);
    assert_eq!(d.state.path, PathBuf::from(".recur/state.db"));
    assert_eq!(d.notify.max_notifications, 20);
    assert_eq!(d.notify.max_attempts, 8);
    assert_eq!(d.notify.timeout, SignedDuration::from_secs(10));
    assert_eq!(d.input.max_line_bytes, 1_048_576);
    let dc = d.decode_config();
    let def = DecodeConfig::default();
    assert_eq!(dc.format, def.format);
    assert_eq!(dc.time_fields, def.time_fields);
    assert_eq!(dc.id_fields, def.id_fields);
    assert_eq!(dc.zone, TimeZone::UTC);

    let e = ok("");
    assert_eq!(Config { path: None, ..e }, d);
}

/// IANA zones need a time zone database (the system's zoneinfo on Unix); skip without one.
#[test]
fn iana_time_zones() {
    if jiff::tz::db().available().next().is_none() {
        return;
    }
    let c = ok("[input]\ntimezone = \"Europe/Paris\"\n");
    assert_eq!(c.input.timezone, TimeZone::get("Europe/Paris").unwrap());
    assert_eq!(c.decode_config().zone, c.input.timezone);
    let (d, _) = one_err("[input]\ntimezone = \"Europe/Pariss\"\n");
    assert_eq!(d.hint.as_deref(), Some("did you mean `Europe/Paris`?"));
    // Lookups ignore case, as IANA names do.
    assert!(
        ok("[input]\ntimezone = \"europe/paris\"\n")
            .input
            .timezone
            .iana_name()
            .is_some()
    );
}

#[test]
fn smtp_url_implies_starttls() {
    let c = ok(
        "[channels.m]\ntype = \"email\"\nurl = \"smtp://mail:587\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
    );
    assert!(matches!(
        c.channels["m"],
        ChannelConfig::Email {
            tls: TlsMode::StartTls,
            ..
        }
    ));
    let c = ok(
        "[channels.m]\ntype = \"email\"\nurl = \"smtp://mail:25\"\ntls = \"none\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
    );
    assert!(matches!(
        c.channels["m"],
        ChannelConfig::Email {
            tls: TlsMode::None,
            ..
        }
    ));
}

#[test]
fn unknown_keys_are_located_with_suggestions() {
    let (d, lc) = one_err("[input]\nformt = \"json\"\n");
    assert_eq!(d.message, "unknown key `formt`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `format`?"));
    assert_eq!(lc, (2, 1));

    let (d, lc) = one_err("default_channel = []\n");
    assert_eq!(d.message, "unknown key `default_channel`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `default_channels`?"));
    assert_eq!(lc, (1, 1));

    let (d, lc) = one_err("[notfy]\n");
    assert_eq!(d.message, "unknown table `notfy`");
    assert_eq!(lc, (1, 2));

    let (d, lc) = one_err("[channels.s]\ntype = \"slack\"\nurl_env = \"X\"\nchanel = \"#a\"\n");
    assert_eq!(d.message, "unknown key `chanel`");
    assert_eq!(lc, (4, 1));
}

#[test]
fn wrong_types_and_values() {
    let (d, lc) = one_err("[input]\nmax_line_bytes = \"1024\"\n");
    assert_eq!(
        d.message,
        "`max_line_bytes` must be an integer, found a string"
    );
    assert_eq!(lc, (2, 18));

    let (d, lc) = one_err("[input]\nformat = \"jsn\"\n");
    assert_eq!(d.message, "unknown format `jsn`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `json`?"));
    assert_eq!(lc, (2, 10));

    let (d, _) = one_err("[input]\ntimezone = \"Mars/Olympus\"\n");
    assert_eq!(d.message, "unknown time zone `Mars/Olympus`");

    let (d, _) = one_err("[notify]\ntimeout = \"10\"\n");
    assert!(
        d.message.starts_with("invalid duration for `timeout`"),
        "{}",
        d.message
    );

    let (d, _) = one_err("[notify]\nmax_attempts = 0\n");
    assert_eq!(
        d.message,
        "`max_attempts` must be between 1 and 4294967295, found 0"
    );

    let (d, lc) = one_err("[redact]\npatterns = ['ok', '(bad']\n");
    assert_eq!(d.message, "invalid regex: unclosed group");
    assert_eq!(lc, (2, 19));

    let (d, _) = one_err("[state]\npath = 3\n");
    assert_eq!(d.message, "`path` must be a string, found an integer");

    let (d, _) = one_err("input = 3\n");
    assert_eq!(d.message, "`input` must be a table, found an integer");
}

#[test]
fn channel_errors() {
    let (d, lc) = one_err("[channels.x]\ntype = \"pager\"\n");
    assert_eq!(d.message, "unknown type `pager`");
    assert_eq!(lc, (2, 8));

    let (d, lc) = one_err("[channels.x]\nurl = \"https://a\"\n");
    assert_eq!(d.message, "missing required key `type`");
    assert_eq!(lc, (1, 1));

    let (d, _) = one_err("[channels.x]\ntype = \"webhook\"\n");
    assert_eq!(d.message, "missing required key `url`");

    let (d, lc) = one_err("[channels.x]\ntype = \"slack\"\nurl = \"https://a\"\nurl_env = \"U\"\n");
    assert_eq!(d.message, "both `url` and `url_env` are set");
    assert_eq!(lc, (4, 1));

    let (d, _) = one_err("[channels.x]\ntype = \"webhook\"\nurl = \"ftp://a\"\n");
    assert_eq!(d.message, "`url` must start with `https://` or `http://`");

    let (d, lc) = one_err(
        "[channels.m]\ntype = \"email\"\nurl = \"mail.example.com\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
    );
    assert_eq!(
        d.message,
        "an email channel's `url` must start with `smtp://` or `smtps://`"
    );
    assert_eq!(lc, (3, 7));

    let (d, _) = one_err(
        "[channels.m]\ntype = \"email\"\nurl = \"smtps://m\"\ntls = \"starttls\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
    );
    assert_eq!(
        d.message,
        "`tls = \"starttls\"` contradicts the `smtps://` URL"
    );

    let (d, _) =
        one_err("[channels.m]\ntype = \"email\"\nurl = \"smtp://m\"\nfrom = \"a@b\"\nto = []\n");
    assert_eq!(d.message, "`to` lists no recipient");

    let (d, _) = one_err(
        "[channels.h]\ntype = \"webhook\"\nurl_env = \"U\"\nheaders_env = { \"Bad Header\" = \"T\" }\n",
    );
    assert_eq!(d.message, "`Bad Header` is not a valid HTTP header name");

    let (d, lc) = one_err("[channels.x]\ntype = \"console\"\nurl = \"https://a\"\n");
    assert_eq!(d.message, "unknown key `url`");
    assert_eq!(lc, (3, 1));
}

#[test]
fn default_channels_must_exist() {
    let (d, lc) = one_err(
        "default_channels = [\"console\", \"oncal\"]\n[channels.oncall]\ntype = \"console\"\n",
    );
    assert_eq!(d.message, "unknown channel `oncal`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `oncall`?"));
    assert_eq!(lc, (1, 32));
}

#[test]
fn every_error_is_reported() {
    let text = "[input]\nformat = 1\n[notify]\ntimeout = \"x\"\n[channels.a]\ntype = \"nope\"\n";
    let d = Config::parse(path(), text).unwrap_err();
    assert_eq!(d.len(), 3);
}

#[test]
fn missing_file_is_one_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let d = Config::load(&dir.path().join("recur.toml")).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(d[0].message.starts_with("cannot read config file"));
    assert_eq!(d[0].span, None);
}

#[test]
fn rule_channels_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "id = \"R\"\ntitle = \"t\"\nowner = \"o\"\nanalysis = \"a\"\n[fix]\nstatus = \"open\"\n\
                [[signature]]\nx = 1\n[alert]\nchannels = [\"console\", \"pager\", \"oncal\"]\n";
    std::fs::write(dir.path().join("r.toml"), rule).unwrap();
    let rules = crate::rule::load_rules_dir(dir.path()).unwrap();
    assert!(rules.is_valid());

    let config = ok("[channels.oncall]\ntype = \"console\"\n");
    let d = validate_rule_channels(&rules, &config);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].message, "unknown channel `pager`");
    assert_eq!(d[0].location(rule), Some((10, 24)));
    assert_eq!(
        d[0].hint.as_deref(),
        Some("define it in recur.toml as `[channels.pager]`")
    );
    assert_eq!(d[1].message, "unknown channel `oncal`");
    assert_eq!(d[1].hint.as_deref(), Some("did you mean `oncall`?"));

    let d = validate_rule_channels(&rules, &Config::default());
    assert_eq!(d.len(), 2);
    assert!(
        d[0].hint
            .as_deref()
            .unwrap()
            .starts_with("no recur.toml was loaded")
    );
}

#[test]
fn email_addresses_are_checked_with_their_location() {
    let (d, (line, col)) = one_err(
        "[channels.m]\ntype = \"email\"\nurl = \"smtp://h\"\nfrom = \"r@example.com\"\nto = [\"a@example.com\", \"not an address\"]\n",
    );
    assert!(
        d.message
            .contains("`not an address` is not an email address"),
        "{}",
        d.message
    );
    assert_eq!((line, col), (5, 24));
}
