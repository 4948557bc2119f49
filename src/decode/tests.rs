//! Table tests for [`decode`](super::decode): every format, envelope and failure mode.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// What a case expects.
enum Want {
    Event {
        fields: Value,
        text: &'static str,
        time: Option<&'static str>,
        id: Option<&'static str>,
        format: Format,
    },
    Err(DecodeError),
    /// A `DecodeError::Json` (serde's message is not pinned down).
    JsonErr,
    EnvelopeErr(&'static str),
}

struct Case {
    name: &'static str,
    input: &'static [u8],
    format: Format,
    zone: &'static str,
    meta: RecordMeta,
    want: Want,
}

fn case(name: &'static str, input: &'static [u8], want: Want) -> Case {
    Case {
        name,
        input,
        format: Format::Auto,
        zone: "UTC",
        meta: RecordMeta::default(),
        want,
    }
}

impl Case {
    fn format(mut self, f: Format) -> Self {
        self.format = f;
        self
    }
    fn zone(mut self, z: &'static str) -> Self {
        self.zone = z;
        self
    }
    fn meta(mut self, time: Option<&str>, stream: Option<&str>) -> Self {
        self.meta = RecordMeta {
            time: time.map(ts),
            stream: stream.map(str::to_owned),
        };
        self
    }
}

fn ev(
    fields: Value,
    text: &'static str,
    time: Option<&'static str>,
    id: Option<&'static str>,
    format: Format,
) -> Want {
    Want::Event {
        fields,
        text,
        time,
        id,
        format,
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cases() -> Vec<Case> {
    use Format::*;
    vec![
        // --- plain JSON -------------------------------------------------------------------
        case(
            "flat json",
            br#"{"timestamp":"2025-09-08T19:01:46Z","error_code":"NO_TOKEN","status":500}"#,
            ev(
                json!({"timestamp":"2025-09-08T19:01:46Z","error_code":"NO_TOKEN","status":500}),
                r#"{"timestamp":"2025-09-08T19:01:46Z","error_code":"NO_TOKEN","status":500}"#,
                Some("2025-09-08T19:01:46Z"), None, Json,
            ),
        ),
        case(
            "nested json, nested time field not configured, epoch ms in ts",
            br#"  {"ts":1757358106123,"auth":{"present":false},"metadata":{"time":"2020-01-01T00:00:00Z"}}"#,
            ev(
                json!({"ts":1757358106123u64,"auth":{"present":false},"metadata":{"time":"2020-01-01T00:00:00Z"}}),
                r#"  {"ts":1757358106123,"auth":{"present":false},"metadata":{"time":"2020-01-01T00:00:00Z"}}"#,
                Some("2025-09-08T19:01:46.123Z"), None, Json,
            ),
        ),
        case(
            "duplicate keys: last wins",
            br#"{"error_code":"OTHER","error_code":"NO_TOKEN"}"#,
            ev(json!({"error_code":"NO_TOKEN"}), r#"{"error_code":"OTHER","error_code":"NO_TOKEN"}"#, None, None, Json),
        ),
        case(
            "escaped strings",
            br#"{"error_code":"\u004eO_TOKEN","msg":"say \"hi\"\n","k\u0065y":1}"#,
            ev(
                json!({"error_code":"NO_TOKEN","msg":"say \"hi\"\n","key":1}),
                r#"{"error_code":"\u004eO_TOKEN","msg":"say \"hi\"\n","k\u0065y":1}"#,
                None, None, Json,
            ),
        ),
        case(
            "BOM and CRLF are stripped",
            b"\xef\xbb\xbf{\"a\":1}\r",
            ev(json!({"a":1}), r#"{"a":1}"#, None, None, Json),
        ),
        case("a trailing LF is tolerated", b"{\"a\":1}\r\n", ev(json!({"a":1}), r#"{"a":1}"#, None, None, Json)),
        case("malformed { line", br#"{"a":1"#, Want::JsonErr),
        case("trailing garbage after the object", br#"{"a":1} x"#, Want::JsonErr),
        case("invalid UTF-8", b"{\"a\":\"\xff\"}", Want::Err(DecodeError::Utf8(6))),
        case("truncated UTF-8", b"abc\xe2\x82", Want::Err(DecodeError::Utf8(3))),
        case("NUL", b"abc\0def", Want::Err(DecodeError::Nul(3))),
        case("NUL before invalid UTF-8", b"a\0\xff", Want::Err(DecodeError::Nul(1))),
        case("invalid UTF-8 before NUL", b"a\xff\0", Want::Err(DecodeError::Utf8(1))),
        case(
            "id: first configured field, number stringified",
            br#"{"event_id":"","id":12345,"eventId":"e-1"}"#,
            // event_id is empty (skipped), eventId comes before id in the default list.
            ev(json!({"event_id":"","id":12345,"eventId":"e-1"}), r#"{"event_id":"","id":12345,"eventId":"e-1"}"#, None, Some("e-1"), Json),
        ),
        case(
            "id number",
            br#"{"id":12345}"#,
            ev(json!({"id":12345}), r#"{"id":12345}"#, None, Some("12345"), Json),
        ),
        case(
            "unparsable time field is skipped for the next one",
            br#"{"timestamp":"soon","time":1757358106}"#,
            ev(json!({"timestamp":"soon","time":1757358106}), r#"{"timestamp":"soon","time":1757358106}"#, Some("2025-09-08T19:01:46Z"), None, Json),
        ),
        case(
            "json without time takes the envelope's",
            br#"{"a":1}"#,
            ev(json!({"a":1,"stream":"stderr"}), r#"{"a":1}"#, Some("2025-09-08T19:01:46Z"), None, Json),
        )
        .meta(Some("2025-09-08T19:01:46Z"), Some("stderr")),
        case(
            "json's own time wins over the envelope's; its stream field too",
            br#"{"time":"2025-09-08T19:00:00Z","stream":"app"}"#,
            ev(json!({"time":"2025-09-08T19:00:00Z","stream":"app"}), r#"{"time":"2025-09-08T19:00:00Z","stream":"app"}"#, Some("2025-09-08T19:00:00Z"), None, Json),
        )
        .meta(Some("2025-09-08T19:01:46Z"), Some("stderr")),
        case(
            "a JSON array line is text",
            b"[1,2]",
            ev(json!({}), "[1,2]", None, None, Text),
        ),
        // --- GCP ----------------------------------------------------------------------------
        case(
            "gcp jsonPayload: lifted, envelope reachable, insertId, timestamp",
            br#"{"insertId":"abc123","jsonPayload":{"error_code":"NO_TOKEN","severity":"payload-wins"},"resource":{"type":"cloud_run_revision","labels":{"service_name":"api"}},"severity":"ERROR","timestamp":"2025-09-08T19:01:46.5Z","receiveTimestamp":"2025-09-08T19:01:47Z","labels":{"env":"staging"},"logName":"projects/p/logs/run"}"#,
            ev(
                json!({"insertId":"abc123","error_code":"NO_TOKEN","severity":"payload-wins",
                       "resource":{"type":"cloud_run_revision","labels":{"service_name":"api"}},
                       "timestamp":"2025-09-08T19:01:46.5Z","receiveTimestamp":"2025-09-08T19:01:47Z",
                       "labels":{"env":"staging"},"logName":"projects/p/logs/run"}),
                r#"{"insertId":"abc123","jsonPayload":{"error_code":"NO_TOKEN","severity":"payload-wins"},"resource":{"type":"cloud_run_revision","labels":{"service_name":"api"}},"severity":"ERROR","timestamp":"2025-09-08T19:01:46.5Z","receiveTimestamp":"2025-09-08T19:01:47Z","labels":{"env":"staging"},"logName":"projects/p/logs/run"}"#,
                Some("2025-09-08T19:01:46.5Z"), Some("abc123"), Gcp,
            ),
        ),
        case(
            "gcp payload with its own timestamp wins over the entry's",
            br#"{"insertId":"x","jsonPayload":{"timestamp":"2025-09-08T18:00:00Z"},"timestamp":"2025-09-08T19:01:46Z"}"#,
            ev(
                json!({"insertId":"x","timestamp":"2025-09-08T18:00:00Z"}),
                r#"{"insertId":"x","jsonPayload":{"timestamp":"2025-09-08T18:00:00Z"},"timestamp":"2025-09-08T19:01:46Z"}"#,
                Some("2025-09-08T18:00:00Z"), Some("x"), Gcp,
            ),
        ),
        case(
            "gcp payload time that does not parse: the entry's timestamp still counts",
            br#"{"insertId":"x","jsonPayload":{"timestamp":"n/a"},"timestamp":"2025-09-08T19:01:46Z"}"#,
            ev(
                json!({"insertId":"x","timestamp":"n/a"}),
                r#"{"insertId":"x","jsonPayload":{"timestamp":"n/a"},"timestamp":"2025-09-08T19:01:46Z"}"#,
                Some("2025-09-08T19:01:46Z"), Some("x"), Gcp,
            ),
        ),
        case(
            "gcp entry with only receiveTimestamp, protobuf timestamp object",
            br#"{"logName":"l","jsonPayload":{"m":1},"receiveTimestamp":{"seconds":1757358106,"nanos":250000000}}"#,
            ev(
                json!({"logName":"l","m":1,"receiveTimestamp":{"seconds":1757358106,"nanos":250000000}}),
                r#"{"logName":"l","jsonPayload":{"m":1},"receiveTimestamp":{"seconds":1757358106,"nanos":250000000}}"#,
                Some("2025-09-08T19:01:46.25Z"), None, Gcp,
            ),
        ),
        case(
            "gcp textPayload",
            br#"{"insertId":"t1","textPayload":"No JWT in WebSocket headers","timestamp":"2025-09-08T19:01:46Z","severity":"ERROR"}"#,
            ev(
                json!({"insertId":"t1","textPayload":"No JWT in WebSocket headers","message":"No JWT in WebSocket headers","timestamp":"2025-09-08T19:01:46Z","severity":"ERROR"}),
                "No JWT in WebSocket headers",
                Some("2025-09-08T19:01:46Z"), Some("t1"), Gcp,
            ),
        ),
        case(
            "gcp textPayload keeps an existing message; leading timestamp when the entry has none",
            br#"{"insertId":"t2","textPayload":"2025-09-08T10:00:00Z boom","message":"m"}"#,
            ev(
                json!({"insertId":"t2","textPayload":"2025-09-08T10:00:00Z boom","message":"m"}),
                "2025-09-08T10:00:00Z boom",
                Some("2025-09-08T10:00:00Z"), Some("t2"), Gcp,
            ),
        ),
        case(
            "gcp protoPayload stays as it is",
            br#"{"insertId":"p","protoPayload":{"methodName":"x"},"timestamp":"2025-09-08T19:01:46Z"}"#,
            ev(
                json!({"insertId":"p","protoPayload":{"methodName":"x"},"timestamp":"2025-09-08T19:01:46Z"}),
                r#"{"insertId":"p","protoPayload":{"methodName":"x"},"timestamp":"2025-09-08T19:01:46Z"}"#,
                Some("2025-09-08T19:01:46Z"), Some("p"), Gcp,
            ),
        ),
        case(
            "a payload without any envelope marker is plain JSON",
            br#"{"jsonPayload":{"a":1}}"#,
            ev(json!({"jsonPayload":{"a":1}}), r#"{"jsonPayload":{"a":1}}"#, None, None, Json),
        ),
        // --- Docker -------------------------------------------------------------------------
        case(
            "docker with inner JSON",
            br#"{"log":"{\"level\":\"error\",\"error_code\":\"NO_TOKEN\"}\n","stream":"stderr","time":"2025-09-08T19:01:46.123456789Z"}"#,
            ev(
                json!({"level":"error","error_code":"NO_TOKEN","stream":"stderr"}),
                r#"{"level":"error","error_code":"NO_TOKEN"}"#,
                Some("2025-09-08T19:01:46.123456789Z"), None, Docker,
            ),
        ),
        case(
            "docker inner JSON with its own time and stream",
            br#"{"log":"{\"time\":\"2025-09-08T19:00:00Z\",\"stream\":\"s\"}\r\n","stream":"stdout","time":"2025-09-08T19:01:46Z"}"#,
            ev(
                json!({"time":"2025-09-08T19:00:00Z","stream":"s"}),
                r#"{"time":"2025-09-08T19:00:00Z","stream":"s"}"#,
                Some("2025-09-08T19:00:00Z"), None, Docker,
            ),
        ),
        case(
            "docker with inner text",
            br#"{"log":"panic: No JWT in headers\n","stream":"stderr","time":"2025-09-08T19:01:46Z"}"#,
            ev(json!({"stream":"stderr"}), "panic: No JWT in headers", Some("2025-09-08T19:01:46Z"), None, Docker),
        ),
        case(
            "docker with inner logfmt and attrs",
            br#"{"log":"level=error code=NO_TOKEN\n","stream":"stdout","attrs":{"tag":"api"},"time":"2025-09-08T19:01:46Z"}"#,
            ev(json!({"level":"error","code":"NO_TOKEN","stream":"stdout","attrs":{"tag":"api"}}), "level=error code=NO_TOKEN", Some("2025-09-08T19:01:46Z"), None, Docker),
        ),
        case(
            "docker with malformed inner JSON",
            br#"{"log":"{oops\n","stream":"stdout","time":"2025-09-08T19:01:46Z"}"#,
            Want::JsonErr,
        ),
        case(
            "an extra key means it is not docker",
            br#"{"log":"x","stream":"stdout","time":"2025-09-08T19:01:46Z","level":"info"}"#,
            ev(
                json!({"log":"x","stream":"stdout","time":"2025-09-08T19:01:46Z","level":"info"}),
                r#"{"log":"x","stream":"stdout","time":"2025-09-08T19:01:46Z","level":"info"}"#,
                Some("2025-09-08T19:01:46Z"), None, Json,
            ),
        ),
        // --- logfmt -------------------------------------------------------------------------
        case(
            "logfmt with quoted values and escapes",
            br#"ts=2025-09-08T19:01:46Z level=error msg="No JWT \"token\" found" error_code=NO_TOKEN id=7"#,
            ev(
                json!({"ts":"2025-09-08T19:01:46Z","level":"error","msg":"No JWT \"token\" found","error_code":"NO_TOKEN","id":"7"}),
                r#"ts=2025-09-08T19:01:46Z level=error msg="No JWT \"token\" found" error_code=NO_TOKEN id=7"#,
                Some("2025-09-08T19:01:46Z"), Some("7"), Logfmt,
            ),
        ),
        case(
            "logfmt bare values, flat dotted key, epoch string time",
            b"time=1757358106 http.status=500",
            ev(json!({"time":"1757358106","http.status":"500"}), "time=1757358106 http.status=500", Some("2025-09-08T19:01:46Z"), None, Logfmt),
        ),
        // --- text ---------------------------------------------------------------------------
        case(
            "text with leading Z timestamp",
            b"2025-09-08T19:01:46Z ERROR No JWT",
            ev(json!({}), "2025-09-08T19:01:46Z ERROR No JWT", Some("2025-09-08T19:01:46Z"), None, Text),
        ),
        case(
            "text with leading offset timestamp",
            b"2025-09-08T21:01:46.25+02:00 ERROR x",
            ev(json!({}), "2025-09-08T21:01:46.25+02:00 ERROR x", Some("2025-09-08T19:01:46.25Z"), None, Text),
        ),
        case(
            "text with local timestamp in Berlin",
            b"2025-09-08 21:01:46,000 ERROR x",
            ev(json!({}), "2025-09-08 21:01:46,000 ERROR x", Some("2025-09-08T19:01:46Z"), None, Text),
        )
        .zone("Europe/Berlin"),
        case(
            "text with local timestamp in UTC",
            b"2025-09-08 21:01:46 ERROR x",
            ev(json!({}), "2025-09-08 21:01:46 ERROR x", Some("2025-09-08T21:01:46Z"), None, Text),
        ),
        case(
            "text with bracketed timestamp",
            b"[2025-09-08T19:01:46Z] ERROR x",
            ev(json!({}), "[2025-09-08T19:01:46Z] ERROR x", Some("2025-09-08T19:01:46Z"), None, Text),
        ),
        case(
            "text without timestamp",
            b"ERROR: No JWT in WebSocket headers",
            ev(json!({}), "ERROR: No JWT in WebSocket headers", None, None, Text),
        ),
        case(
            "text without timestamp takes the envelope's; stream from the envelope",
            b"ERROR x",
            ev(json!({"stream":"stdout"}), "ERROR x", Some("2025-09-08T19:01:46Z"), None, Text),
        )
        .meta(Some("2025-09-08T19:01:46Z"), Some("stdout")),
        case(
            "text's own timestamp wins over the envelope's",
            b"2025-09-08T19:00:00Z ERROR x",
            ev(json!({}), "2025-09-08T19:00:00Z ERROR x", Some("2025-09-08T19:00:00Z"), None, Text),
        )
        .meta(Some("2025-09-08T19:01:46Z"), None),
        case("empty line", b"", ev(json!({}), "", None, None, Text)),
        case("BOM only", b"\xef\xbb\xbf", ev(json!({}), "", None, None, Text)),
        // --- forced formats -----------------------------------------------------------------
        case("forced json: not an object", b"[1]", Want::JsonErr).format(Json),
        case("forced json: text", b"hello", Want::JsonErr).format(Json),
        case(
            "forced json still unwraps envelopes",
            br#"{"insertId":"i","jsonPayload":{"a":1}}"#,
            ev(json!({"insertId":"i","a":1}), r#"{"insertId":"i","jsonPayload":{"a":1}}"#, None, Some("i"), Gcp),
        )
        .format(Json),
        case(
            "forced gcp needs only the payload",
            br#"{"jsonPayload":{"a":1},"timestamp":"2025-09-08T19:01:46Z"}"#,
            ev(json!({"a":1,"timestamp":"2025-09-08T19:01:46Z"}), r#"{"jsonPayload":{"a":1},"timestamp":"2025-09-08T19:01:46Z"}"#, Some("2025-09-08T19:01:46Z"), None, Gcp),
        )
        .format(Gcp),
        case("forced gcp without payload", br#"{"insertId":"i"}"#, Want::EnvelopeErr("gcp")).format(Gcp),
        case("forced gcp on text", b"hello", Want::JsonErr).format(Gcp),
        case(
            "forced docker needs only log",
            br#"{"log":"hi\n"}"#,
            ev(json!({}), "hi", None, None, Docker),
        )
        .format(Docker),
        case("forced docker without log", br#"{"msg":"hi"}"#, Want::EnvelopeErr("docker")).format(Docker),
        case(
            "forced logfmt is lenient",
            b"Starting server port=8080",
            ev(json!({"port":"8080"}), "Starting server port=8080", None, None, Logfmt),
        )
        .format(Logfmt),
        case(
            "forced text keeps JSON as text",
            br#"{"a":1}"#,
            ev(json!({}), r#"{"a":1}"#, None, None, Text),
        )
        .format(Text),
        case(
            "forced text still validates",
            b"a\0",
            Want::Err(DecodeError::Nul(1)),
        )
        .format(Text),
        case(
            "cri content is decoded as auto",
            br#"{"error_code":"NO_TOKEN"}"#,
            ev(json!({"error_code":"NO_TOKEN","stream":"stderr"}), r#"{"error_code":"NO_TOKEN"}"#, Some("2025-09-08T19:01:46Z"), None, Json),
        )
        .format(Cri)
        .meta(Some("2025-09-08T19:01:46Z"), Some("stderr")),
    ]
}

#[test]
fn decode_table() {
    for c in cases() {
        let cfg = DecodeConfig {
            format: c.format,
            zone: TimeZone::get(c.zone).unwrap(),
            ..DecodeConfig::default()
        };
        let got = decode(c.input, &c.meta, &cfg);
        match (c.want, got) {
            (
                Want::Event {
                    fields,
                    text,
                    time,
                    id,
                    format,
                },
                Ok(ev),
            ) => {
                let want = Event {
                    fields,
                    text: text.to_owned(),
                    time: time.map(ts),
                    id: id.map(str::to_owned),
                    format,
                    projected: false,
                };
                assert_eq!(ev, want, "case {:?}", c.name);
            }
            (Want::Err(want), Err(err)) => assert_eq!(err, want, "case {:?}", c.name),
            (Want::JsonErr, Err(DecodeError::Json(msg))) => {
                assert!(!msg.is_empty(), "case {:?}", c.name)
            }
            (Want::EnvelopeErr(f), Err(DecodeError::Envelope { format, .. })) => {
                assert_eq!(format, f, "case {:?}", c.name)
            }
            (_, got) => panic!("case {:?}: unexpected result {got:?}", c.name),
        }
    }
}

#[test]
fn configured_nested_time_and_id_paths() {
    let cfg = DecodeConfig {
        time_fields: vec!["metadata.time".into(), "timestamp".into()],
        id_fields: vec!["req.id".into()],
        ..DecodeConfig::default()
    };
    let line = br#"{"metadata":{"time":"2025-09-08T19:01:46Z"},"timestamp":"2020-01-01T00:00:00Z","req":{"id":42}}"#;
    let ev = decode(line, &RecordMeta::default(), &cfg).unwrap();
    assert_eq!(ev.time, Some(ts("2025-09-08T19:01:46Z")));
    assert_eq!(ev.id.as_deref(), Some("42"));
    // A flat key spelled with a dot is found before the nested reading.
    let line =
        br#"{"metadata.time":"2021-01-01T00:00:00Z","metadata":{"time":"2025-09-08T19:01:46Z"}}"#;
    let ev = decode(line, &RecordMeta::default(), &cfg).unwrap();
    assert_eq!(ev.time, Some(ts("2021-01-01T00:00:00Z")));
}

#[test]
fn serde_error_message_is_kept() {
    let err = decode(
        br#"{"a":}"#,
        &RecordMeta::default(),
        &DecodeConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Json(m) if m.contains("line 1 column")),
        "{err}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let line = format!("{}{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let err = decode(
        line.as_bytes(),
        &RecordMeta::default(),
        &DecodeConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, DecodeError::Json(_)));
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for format in [Format::Auto, Format::Json, Format::Gcp, Format::Docker, Format::Logfmt, Format::Text] {
            let cfg = DecodeConfig { format, ..DecodeConfig::default() };
            let _ = decode(&bytes, &RecordMeta::default(), &cfg);
        }
    }

    #[test]
    fn decode_never_panics_on_structured_text(line in r#"[\[\]{}":=,\\ a-zA-Z0-9.+\-TZ_u]{0,120}"#) {
        let cfg = DecodeConfig::default();
        let _ = decode(line.as_bytes(), &RecordMeta::default(), &cfg);
        let _ = crate::time::parse_time_str(&line, &cfg.zone);
        let _ = crate::time::leading_timestamp(&line, &cfg.zone);
        let _ = parse_cri_line(line.as_bytes());
    }

    #[test]
    fn timestamp_prefixes_never_panic(tail in r#"[0-9T:.,+\- Zz\]UTCGM]{0,24}"#) {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        for head in ["2025-09-08", "[2025-09-08", "9999-12-31", "0000-01-01"] {
            let s = format!("{head}{tail}");
            let _ = crate::time::parse_time_str(&s, &zone);
            let _ = crate::time::leading_timestamp(&s, &zone);
            let _ = parse_cri_line(s.as_bytes());
        }
    }
}

/// A projected decode keeps what rules, time and id fields and envelopes need, and agrees
/// with a whole decode on everything it keeps.
#[test]
fn a_projected_decode_keeps_what_is_asked_and_agrees_on_it() {
    let cfg = DecodeConfig::default();
    // As `Matcher::keep` makes it: the rules' fields, the time and the id fields.
    let mut paths = vec![vec!["error_code".to_string()], vec!["env".to_string()]];
    paths.extend(
        cfg.time_fields
            .iter()
            .chain(&cfg.id_fields)
            .map(|f| vec![f.clone()]),
    );
    let plain = Keep::new(paths.iter().map(Vec::as_slice));
    // As `scan` makes it: the id fields' keys marked, so that records without one skip the
    // id look-up; both must decode alike.
    let marked = plain.clone().with_ids(&cfg.id_fields);
    let meta = RecordMeta::default();
    let cases = [
        // Id fields: the first present, non-empty one; a number is stringified; none at all.
        r#"{"error_code":"NO_TOKEN","id":"","event_id":42,"x":1}"#,
        r#"{"error_code":"NO_TOKEN","insertId":"i9","x":1}"#,
        r#"{"error_code":"NO_TOKEN","eventId":"e1","id":"z"}"#,
        r#"{"error_code":"NO_TOKEN","request_id":"r1","x":1}"#,
        // A GCP text entry, flat: the payload and the markers are kept.
        r#"{"insertId":"t1","timestamp":"2025-09-08T19:01:46Z","textPayload":"NO_TOKEN here","logName":"l","x":1}"#,
        // Fields nobody asked for are left out (the event says so), the rest is the same.
        r#"{"timestamp":"2025-09-08T19:01:46Z","error_code":"NO_TOKEN","env":"staging","user_agent":"x","n":[1,{"a":2}]}"#,
        // Duplicate keys: the last wins, kept or not.
        r#"{"error_code":"A","other":1,"error_code":"NO_TOKEN","other":2}"#,
        // Escaped keys and values.
        r#"{"error\u005fcode":"NO_\u0054OKEN","x\"y":"\\"}"#,
        // Every key kept: not projected.
        r#"{"error_code":"NO_TOKEN","timestamp":"2025-09-08T19:01:46Z"}"#,
        // Docker keys plus one more: a plain object, not a Docker entry, either way.
        r#"{"log":"{\"error_code\":\"NO_TOKEN\"}\n","stream":"stderr","time":"2025-09-08T19:01:46Z","pod":"p"}"#,
        // A Docker entry (only its keys): unwrapped either way.
        r#"{"log":"{\"error_code\":\"NO_TOKEN\"}\n","stream":"stderr","time":"2025-09-08T19:01:46Z"}"#,
        // A GCP entry: the payload is kept whole and lifted.
        r#"{"insertId":"i1","timestamp":"2025-09-08T19:01:46Z","jsonPayload":{"error_code":"NO_TOKEN","deep":{"k":1}},"severity":"ERROR"}"#,
    ];
    for (line, keep) in cases.iter().flat_map(|l| [(*l, &plain), (*l, &marked)]) {
        let whole = decode(line.as_bytes(), &meta, &cfg).unwrap();
        let part = decode_keeping(line.as_bytes(), &meta, &cfg, keep).unwrap();
        let wm = whole.fields.as_object().unwrap();
        let pm = part.fields.as_object().unwrap();
        for (k, v) in pm {
            assert_eq!(wm.get(k), Some(v), "{line}: {k}");
        }
        for k in ["error_code", "env", "timestamp"] {
            assert_eq!(wm.get(k), pm.get(k), "{line}: {k}");
        }
        assert_eq!(part.projected, wm.len() != pm.len(), "{line}");
        assert_eq!(
            (part.time, &part.id, part.format),
            (whole.time, &whole.id, whole.format),
            "{line}"
        );
        // `_line` of a projected plain object only when a rule reads it.
        let with_line = decode_keeping(line.as_bytes(), &meta, &cfg, &keep.clone().with_line(true));
        assert_eq!(with_line.unwrap().text, whole.text, "{line}");
        if !part.projected || part.format != Format::Json {
            assert_eq!(part.text, whole.text, "{line}");
        } else {
            assert_eq!(part.text, "", "{line}");
        }
        // A line already checked decodes alike.
        let valid = decode_keeping_valid(line, &meta, &cfg, keep).unwrap();
        assert_eq!(
            (&valid.fields, &valid.text, valid.time, valid.projected),
            (&part.fields, &part.text, part.time, part.projected),
            "{line}"
        );
    }
    // What is invalid is the same, and so is the message.
    for bad in [
        r#"{"error_code":"NO_TOKEN","x":tru}"#,
        r#"{"a":1} trailing"#,
        r#"{"a":1"#,
        r#"{"x":"\ud800"}"#,
    ] {
        let whole = decode(bad.as_bytes(), &meta, &cfg).unwrap_err();
        let part = decode_keeping(bad.as_bytes(), &meta, &cfg, &marked).unwrap_err();
        assert_eq!(whole, part, "{bad}");
    }
    // Text and logfmt lines decode whole.
    let t = decode_keeping(b"2025-09-08T19:01:46Z text NO_TOKEN", &meta, &cfg, &marked).unwrap();
    assert!(!t.projected);
}

#[test]
fn keep_answers_by_length_then_bytes() {
    let long = "k".repeat(70);
    let keep = Keep::new([
        &["error_code".to_string()][..],
        &["a".to_string(), "b".to_string()][..],
        &[long.clone()][..],
    ]);
    for k in [
        "error_code",
        "a",
        "a.b",
        "message",
        "timestamp",
        long.as_str(),
    ] {
        assert!(keep.contains(k), "{k}");
    }
    // Keys over 16 bytes that share their first and last eight bytes are told apart.
    let mid = Keep::new([&["aaaaaaaaXbbbbbbbb".to_string()][..]]);
    assert!(mid.contains("aaaaaaaaXbbbbbbbb"));
    assert!(!mid.contains("aaaaaaaaYbbbbbbbb"));
    // What keys are for: envelope shapes, and id fields once marked.
    let cfg = DecodeConfig::default();
    let marked = keep.clone().with_ids(&cfg.id_fields);
    assert_eq!(keep.role("jsonPayload"), Some(json::Role::SHAPES));
    assert_eq!(keep.role("log"), Some(json::Role::SHAPES));
    assert_eq!(keep.role("insertId"), Some(0));
    assert_eq!(marked.role("insertId"), Some(json::Role::ID));
    assert_eq!(marked.role("error_code"), Some(0));
    assert_eq!(marked.role("request_id"), None);
    assert!(marked.ids_marked(&cfg.id_fields) && !keep.ids_known());
    let longer = "k".repeat(71);
    let other_long = format!("{}x", "k".repeat(69));
    for k in [
        "",
        "b",
        "error_codf",
        "request_id",
        "level",
        other_long.as_str(),
        longer.as_str(),
    ] {
        assert!(!keep.contains(k), "{k}");
    }
}

/// Flat objects in the spellings the fast path takes and the ones it must leave to serde.
fn flat_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("error_code".to_string()),
        Just("env".to_string()),
        Just("timestamp".to_string()),
        "[a-z_]{0,6}",
        "[a-z\\\\\"\\x01 é]{0,4}",
    ];
    let value = prop_oneof![
        "\"[A-Za-z_ é\\\\\"\\x01\\t/]{0,8}\"",
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,3})?",
        "-?0[0-9]{1,3}",
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        Just("nul".to_string()),
        Just("truex".to_string()),
        Just("{\"a\":1}".to_string()),
        Just("[1,2]".to_string()),
        Just("".to_string()),
    ];
    let ws = prop_oneof![Just(""), Just(" "), Just("\t"), Just("\r"), Just("\u{a0}")];
    prop::collection::vec((key, ws.clone(), value, ws.clone()), 0..6)
        .prop_flat_map(move |pairs| {
            (
                Just(pairs),
                ws.clone(),
                prop_oneof![Just(""), Just(","), Just("x"), Just("}")],
            )
        })
        .prop_map(|(pairs, w, tail)| {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, w1, v, w2)| format!("{w1}\"{k}\"{w1}:{w2}{v}{w2}"))
                .collect();
            format!("{w}{{{}}}{w}{tail}", body.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Where the fast path answers, serde gives the same fields and the same "left out"; and
    /// it answers for the plain lines it is for.
    #[test]
    fn the_flat_path_agrees_with_serde(line in flat_line()) {
        let keep = Keep::new([&["error_code".to_string()][..], &["env".to_string()][..]]);
        if let Some((map, seen)) = json::parse_flat_keeping(&line, &keep) {
            let serde = json::parse_object_keeping(&line, &keep);
            prop_assert_eq!(serde.ok(), Some((map, seen.dropped)), "{}", line);
        }
    }
}

#[test]
fn the_flat_path_takes_plain_lines() {
    let keep = Keep::new([&["error_code".to_string()][..]]);
    for line in [
        r#"{"timestamp":"2025-09-08T19:01:46.120Z","error_code":"NO_TOKEN","latency_ms":132,"ratio":-0.25,"ok":true,"x":null}"#,
        r#" { "error_code" : "NO_TOKEN" , "n" : 0 } "#,
        "{}",
    ] {
        let (map, seen) = json::parse_flat_keeping(line, &keep).expect(line);
        assert_eq!(
            Ok((map, seen.dropped)),
            json::parse_object_keeping(line, &keep),
            "{line}"
        );
    }
    for line in [
        r#"{"error_code":"NO\u005fTOKEN"}"#,
        r#"{"a":{"b":1}}"#,
        r#"{"a":1e3}"#,
        r#"{"a":01}"#,
        r#"{"a":1} x"#,
        "{\"a\":\"\u{1}\"}",
        r#"{"a":1,}"#,
    ] {
        assert_eq!(json::parse_flat_keeping(line, &keep), None, "{line}");
    }
}
