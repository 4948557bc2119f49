//! The embedded store: one SQLite file (WAL, busy timeout, mode 0600), or an in-memory
//! database for `--no-state`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::*;
use crate::track::IntentDraft;

/// Schema version written to `PRAGMA user_version`. Each step in [`MIGRATIONS`] moves one up.
pub const SCHEMA_VERSION: i64 = 5;

/// Migrations, applied in order inside one transaction each. Never edit a shipped step.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, V2, V3, V4, V5];

/// Version 1, the first shipped schema (public so tests can build a file an older recur wrote).
pub const SCHEMA_V1: &str = r#"
CREATE TABLE occurrences (
    remediation TEXT NOT NULL,
    identity    TEXT NOT NULL,
    event_time  INTEGER,            -- unix nanoseconds, NULL when untimed
    signature   INTEGER NOT NULL,
    source      TEXT NOT NULL,
    line        INTEGER NOT NULL,
    sample      TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (remediation, identity)
) WITHOUT ROWID;
CREATE INDEX occurrences_time ON occurrences (remediation, event_time);
CREATE TABLE coverage (
    remediation TEXT NOT NULL,
    bucket      INTEGER NOT NULL,   -- unix seconds, hour start
    input       TEXT NOT NULL,
    count       INTEGER NOT NULL,
    max_time    INTEGER NOT NULL,
    PRIMARY KEY (remediation, bucket, input)
) WITHOUT ROWID;
CREATE TABLE inputs (
    key        TEXT NOT NULL,
    params     TEXT NOT NULL,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL,
    PRIMARY KEY (key, params)
) WITHOUT ROWID;
CREATE TABLE remediations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    analysis    TEXT NOT NULL,
    last_loaded INTEGER NOT NULL
);
CREATE TABLE intents (
    key           TEXT PRIMARY KEY,
    remediation   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    episode_start INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    due           INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    suppressed    INTEGER NOT NULL,
    folded        TEXT NOT NULL      -- JSON array of keys (digests)
);
CREATE TABLE deliveries (
    key          TEXT NOT NULL REFERENCES intents(key) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt INTEGER,
    last_error   TEXT,
    PRIMARY KEY (key, channel)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    path      TEXT PRIMARY KEY,
    dev       INTEGER NOT NULL,
    inode     INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    head_len  INTEGER NOT NULL,
    offset    INTEGER NOT NULL,
    line      INTEGER NOT NULL,
    tail_hash TEXT NOT NULL
);
"#;

/// Version 2: recorded episodes (their identity survives earlier events arriving later), prune
/// marks, the input each occurrence came from (so a re-read replaces it), and the tail hash of
/// scanned inputs.
const V2: &str = r#"
CREATE TABLE episodes (
    remediation TEXT NOT NULL,
    identity    INTEGER NOT NULL,   -- unix ns: the start when first recorded (notification keys)
    start       INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    reminders   INTEGER NOT NULL,
    merged_into INTEGER,            -- identity of the episode a later event joined it to
    active      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,   -- order of first recording
    PRIMARY KEY (remediation, identity)
) WITHOUT ROWID;
-- Episodes notified before this version: one per (remediation, episode start) of the ledger,
-- spanning what the ledger knows of it, so their identities carry over.
INSERT INTO episodes (remediation, identity, start, first_seen, last_seen, count, reminders, merged_into, active, seq)
    SELECT remediation, episode_start, episode_start, episode_start, MAX(due), MAX(count),
           SUM(kind = 'reminder'), NULL, 1, ROW_NUMBER() OVER (ORDER BY MIN(created_at), episode_start)
    FROM intents WHERE kind != 'digest' GROUP BY remediation, episode_start;
CREATE TABLE prune_marks (
    remediation TEXT PRIMARY KEY,
    before      INTEGER NOT NULL    -- unix ns: events before it were pruned; commits ignore them
);
ALTER TABLE occurrences ADD COLUMN input_key  TEXT NOT NULL DEFAULT '';
ALTER TABLE occurrences ADD COLUMN input_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE occurrences ADD COLUMN input_tail TEXT NOT NULL DEFAULT '';
-- Occurrences stored before this version: attribute them to the last input read at their path.
UPDATE occurrences SET
    input_key  = COALESCE((SELECT key  FROM inputs WHERE inputs.path = occurrences.source ORDER BY scanned_at DESC LIMIT 1), ''),
    input_size = COALESCE((SELECT size FROM inputs WHERE inputs.path = occurrences.source ORDER BY scanned_at DESC LIMIT 1), 0);
CREATE INDEX occurrences_input ON occurrences (input_key);
-- Fingerprints gain the tail hash and are kept per path: two files with the same head are
-- both remembered, a file that grows replaces its own, a renamed one is found by content.
CREATE TABLE inputs_v2 (
    key        TEXT NOT NULL,
    params     TEXT NOT NULL,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    tail       TEXT NOT NULL,
    scanned_at INTEGER NOT NULL,
    PRIMARY KEY (key, params, path)
) WITHOUT ROWID;
INSERT OR REPLACE INTO inputs_v2 SELECT key, params, path, size, '', scanned_at FROM inputs;
DROP TABLE inputs;
ALTER TABLE inputs_v2 RENAME TO inputs;
"#;

/// Version 3: the file size a checkpoint's file had when last looked at, so that a file gone
/// while recur was down is reported with (at least) the bytes it had not read; and an index so
/// that the sidecar's outbox looks (due rows, the pending count, every second) cost nothing
/// however many notifications history holds.
const V3: &str = "ALTER TABLE checkpoints ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX deliveries_status ON deliveries (status)";

/// Version 4: lean occurrence rows. The remediation and the input an occurrence came from
/// are references (`rule_refs`, `origins`) and a hashed identity is 16 bytes instead of 34
/// characters: the row and both its index entries were about 170 and 200 bytes, mostly the
/// same remediation id, path and input hashes repeated; they are now about 40 and 30, which
/// halves what storing an occurrence costs (a scan storing 163,000 of them). An identity is
/// a BLOB for a hash and TEXT otherwise (SQLite keeps each value's own type in a column
/// declared BLOB), so the two can never be equal. `recorded_at` becomes `read_at`, the time
/// of the commit that last read the occurrence: a re-read input removes, at its end, what it
/// contributed before and did not read again.
const V4: &str = r#"
CREATE TABLE rule_refs (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE origins (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,       -- the input's name (a tailed file's path)
    input_key  TEXT NOT NULL,       -- the whole input's content key, '' for tailed files
    input_size INTEGER NOT NULL,
    input_tail TEXT NOT NULL,
    UNIQUE (input_key, source, input_size, input_tail)
);
INSERT INTO rule_refs (name) SELECT DISTINCT remediation FROM occurrences ORDER BY remediation;
INSERT INTO origins (source, input_key, input_size, input_tail)
    SELECT DISTINCT source, input_key, input_size, input_tail FROM occurrences;
CREATE TABLE occurrences_v4 (
    rule       INTEGER NOT NULL,    -- rule_refs.id
    identity   BLOB NOT NULL,       -- 16 bytes (hash) or TEXT
    event_time INTEGER,             -- unix nanoseconds, NULL when untimed
    signature  INTEGER NOT NULL,
    origin     INTEGER NOT NULL,    -- origins.id
    line       INTEGER NOT NULL,
    sample     TEXT NOT NULL,       -- '' when this occurrence keeps none
    read_at    INTEGER NOT NULL,    -- unix ns of the commit that last read it
    PRIMARY KEY (rule, identity)
) WITHOUT ROWID;
INSERT INTO occurrences_v4
    SELECT r.id,
           CASE WHEN length(o.identity) = 34 AND o.identity GLOB 'h:*'
                THEN COALESCE(unhex(substr(o.identity, 3)), o.identity) ELSE o.identity END,
           o.event_time, o.signature, g.id, o.line, o.sample, o.recorded_at
    FROM occurrences o
    JOIN rule_refs r ON r.name = o.remediation
    JOIN origins g ON g.input_key = o.input_key AND g.source = o.source
                  AND g.input_size = o.input_size AND g.input_tail = o.input_tail;
DROP TABLE occurrences;
ALTER TABLE occurrences_v4 RENAME TO occurrences;
-- Only the rows that carry a sample (a few per remediation and hour): what a notification
-- shows. A time index over every row cost a third of storing one (rows are inserted in
-- identity order, so its entries landed at random); the times of all of a remediation's
-- occurrences are read from the table and sorted by the reader instead.
CREATE INDEX occurrences_samples ON occurrences (rule, event_time) WHERE sample != '';
CREATE INDEX occurrences_origin ON occurrences (origin);
"#;

/// Version 5: a hashed identity leads with its event time ([`Identity::of_record`]), so that
/// a log's occurrences are appended to the B-trees in time order. An identity of version 4
/// (the whole 128-bit hash) becomes its row's time and the hash's low 64 bits: what this
/// version computes for the same record, so a record read again is still the same
/// occurrence. Rows that would collide keep their old form (`OR IGNORE`).
const V5: &str = r#"
UPDATE OR IGNORE occurrences
SET identity = unhex(CASE WHEN event_time IS NULL THEN '0000000000000000'
                          WHEN event_time >= 0 THEN printf('%016x', event_time | -9223372036854775808)
                          ELSE printf('%016x', event_time & 9223372036854775807) END
                     || substr(hex(identity), 17))
WHERE typeof(identity) = 'blob' AND length(identity) = 16;
"#;

/// The schema a new database is made with: what [`MIGRATIONS`] leave behind, written at
/// once (the statements are the ones SQLite keeps in `sqlite_master` after them). Running
/// the steps, with their table rebuilds and renames, was most of what opening a new state
/// cost: ~2.5 ms of a 7 ms run, which every scan pays, and which is a tenth of a two-thread
/// scan of 1 GB. `a_new_database_has_the_migrated_schema` keeps the two the same.
const FRESH: &str = r#"
CREATE TABLE coverage (
    remediation TEXT NOT NULL,
    bucket      INTEGER NOT NULL,   -- unix seconds, hour start
    input       TEXT NOT NULL,
    count       INTEGER NOT NULL,
    max_time    INTEGER NOT NULL,
    PRIMARY KEY (remediation, bucket, input)
) WITHOUT ROWID;
CREATE TABLE remediations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    analysis    TEXT NOT NULL,
    last_loaded INTEGER NOT NULL
);
CREATE TABLE intents (
    key           TEXT PRIMARY KEY,
    remediation   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    episode_start INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    due           INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    suppressed    INTEGER NOT NULL,
    folded        TEXT NOT NULL      -- JSON array of keys (digests)
);
CREATE TABLE deliveries (
    key          TEXT NOT NULL REFERENCES intents(key) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt INTEGER,
    last_error   TEXT,
    PRIMARY KEY (key, channel)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    path      TEXT PRIMARY KEY,
    dev       INTEGER NOT NULL,
    inode     INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    head_len  INTEGER NOT NULL,
    offset    INTEGER NOT NULL,
    line      INTEGER NOT NULL,
    tail_hash TEXT NOT NULL
, size INTEGER NOT NULL DEFAULT 0);
CREATE TABLE episodes (
    remediation TEXT NOT NULL,
    identity    INTEGER NOT NULL,   -- unix ns: the start when first recorded (notification keys)
    start       INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    reminders   INTEGER NOT NULL,
    merged_into INTEGER,            -- identity of the episode a later event joined it to
    active      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,   -- order of first recording
    PRIMARY KEY (remediation, identity)
) WITHOUT ROWID;
CREATE TABLE prune_marks (
    remediation TEXT PRIMARY KEY,
    before      INTEGER NOT NULL    -- unix ns: events before it were pruned; commits ignore them
);
CREATE TABLE "inputs" (
    key        TEXT NOT NULL,
    params     TEXT NOT NULL,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    tail       TEXT NOT NULL,
    scanned_at INTEGER NOT NULL,
    PRIMARY KEY (key, params, path)
) WITHOUT ROWID;
CREATE INDEX deliveries_status ON deliveries (status);
CREATE TABLE rule_refs (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE origins (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,       -- the input's name (a tailed file's path)
    input_key  TEXT NOT NULL,       -- the whole input's content key, '' for tailed files
    input_size INTEGER NOT NULL,
    input_tail TEXT NOT NULL,
    UNIQUE (input_key, source, input_size, input_tail)
);
CREATE TABLE "occurrences" (
    rule       INTEGER NOT NULL,    -- rule_refs.id
    identity   BLOB NOT NULL,       -- 16 bytes (hash) or TEXT
    event_time INTEGER,             -- unix nanoseconds, NULL when untimed
    signature  INTEGER NOT NULL,
    origin     INTEGER NOT NULL,    -- origins.id
    line       INTEGER NOT NULL,
    sample     TEXT NOT NULL,       -- '' when this occurrence keeps none
    read_at    INTEGER NOT NULL,    -- unix ns of the commit that last read it
    PRIMARY KEY (rule, identity)
) WITHOUT ROWID;
CREATE INDEX occurrences_samples ON occurrences (rule, event_time) WHERE sample != '';
CREATE INDEX occurrences_origin ON occurrences (origin);
"#;

/// An identity as stored: 16 big-endian bytes for a hash (their order is the numbers'), the
/// text otherwise.
fn identity_sql<'a>(i: &'a Identity, buf: &'a mut [u8; 16]) -> rusqlite::types::ValueRef<'a> {
    use rusqlite::types::ValueRef;
    match i {
        Identity::Text(t) => ValueRef::Text(t.as_bytes()),
        Identity::Hash(h) => {
            *buf = h.to_be_bytes();
            ValueRef::Blob(buf)
        }
    }
}

/// The columns [`occurrence_row`] reads, from `occurrences` joined with `origins` as `g`.
const OCCURRENCE_COLUMNS: &str = "(SELECT name FROM rule_refs WHERE id = rule), \
     CASE typeof(identity) WHEN 'blob' THEN 'h:' || lower(hex(identity)) ELSE identity END, \
     event_time, signature, g.source, line, sample";

/// The batch a [`SqliteStore`] has open (see [`Store::begin`]).
struct OpenBatch {
    /// Unix ns of the batch: the `read_at` of every occurrence it reads.
    now: i64,
    /// Prune marks (unix ns) by remediation: events before them are never stored again.
    marks: HashMap<String, i64>,
    /// The batch's input, when it is one whole input: its origin's reference once known (made
    /// with its first occurrence, so that inputs without any leave no row behind), else what
    /// makes it (name, content key, size, tail hash).
    origin: Option<Result<i64, (String, String, u64, String)>>,
    /// Whether this reading replaces an earlier one: an event already stored takes its time
    /// and signature, and moves to this origin when it came from the same input.
    replace: bool,
    /// The origins holding what this input contributed before (the same content under any
    /// name, or an earlier, not larger version of it at the same path), as an SQL list.
    earlier: String,
    /// References looked up in this batch (never cached beyond it: a rolled-back batch's new
    /// references do not exist).
    rules: HashMap<Arc<str>, i64>,
    sources: HashMap<Arc<str>, i64>,
}

/// Page size of new state databases.
const PAGE_SIZE: i64 = 16384;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Connection,
    path: String,
    open: Option<OpenBatch>,
}

fn ns(t: Timestamp) -> i64 {
    t.as_nanosecond().clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Inserts the rows of a first reading in one statement (see [`super::rows`]) and returns
/// the indexes of those that were new, in order. `keyed` is (rule, identity, index, origin)
/// in key order: of two readings of one event the first in it is the one stored.
fn insert_all(
    conn: &Connection,
    keyed: &[(i64, &Identity, usize, i64)],
    occurrences: &[NewOccurrence],
    now: i64,
) -> rusqlite::Result<Vec<usize>> {
    use rusqlite::types::Value;
    if keyed.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = super::rows::Rows::new(7);
    for &(rule, identity, i, origin) in keyed {
        let o = &occurrences[i];
        rows.push([
            Value::Integer(rule),
            match identity {
                Identity::Text(t) => Value::Text(t.to_string()),
                Identity::Hash(h) => Value::Blob(h.to_be_bytes().to_vec()),
            },
            o.time.map_or(Value::Null, |t| Value::Integer(ns(t))),
            Value::Integer(o.signature as i64),
            Value::Integer(origin),
            Value::Integer(o.line as i64),
            Value::Text(o.sample.clone()),
        ]);
    }
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO occurrences (rule, identity, event_time, signature, origin, line, sample, read_at)
         SELECT c0, c1, c2, c3, c4, c5, c6, ?2 FROM recur_rows(?1)
         RETURNING rule, identity",
    )?;
    let mut new = Vec::new();
    let mut returned = ins.query(params![rows.bind(), now])?;
    while let Some(r) = returned.next()? {
        let rule: i64 = r.get(0)?;
        let identity = match r.get_ref(1)? {
            rusqlite::types::ValueRef::Blob(b) if b.len() == 16 => {
                Identity::Hash(u128::from_be_bytes(b.try_into().expect("16 bytes")))
            }
            v => Identity::Text(v.as_str()?.into()),
        };
        // The first reading of this key in the batch is the one inserted.
        let at = keyed.partition_point(|k| (k.0, k.1) < (rule, &identity));
        new.push(keyed[at].2);
    }
    new.sort_unstable();
    Ok(new)
}

/// An occurrence from a row of [`OCCURRENCE_COLUMNS`].
fn occurrence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredOccurrence> {
    Ok(StoredOccurrence {
        remediation: r.get(0)?,
        identity: r.get(1)?,
        time: r.get::<_, Option<i64>>(2)?.map(ts),
        signature: r.get(3)?,
        source: r.get(4)?,
        line: r.get::<_, i64>(5)? as u64,
        sample: r.get(6)?,
    })
}

/// Statements are prepared once per connection and cached: `status` and `scan` ask the same
/// few questions of every remediation. The bundled SQLite is built with STAT4, which by
/// default re-prepares a statement whenever a bound value changes (in case another plan suits
/// the new value): with a thousand rules, most of the time spent reading the store went to
/// parsing the same SQL again. The query-planner stability guarantee turns that off; every
/// query here has one sensible plan.
fn prepare_once(conn: &Connection) {
    conn.set_prepared_statement_cache_capacity(64);
    let _ = conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    );
}

/// The reference of a remediation id, made on first use.
fn rule_id(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("INSERT OR IGNORE INTO rule_refs (name) VALUES (?1)")?
        .execute(params![name])?;
    conn.prepare_cached("SELECT id FROM rule_refs WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
}

/// The reference of an origin (an input by name and content, or a tailed file by name), made
/// on first use.
fn origin_id(
    conn: &Connection,
    source: &str,
    key: &str,
    size: u64,
    tail: &str,
) -> rusqlite::Result<i64> {
    let p = params![source, key, size as i64, tail];
    conn.prepare_cached(
        "INSERT OR IGNORE INTO origins (source, input_key, input_size, input_tail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(p)?;
    conn.prepare_cached(
        "SELECT id FROM origins WHERE source = ?1 AND input_key = ?2 AND input_size = ?3 AND input_tail = ?4",
    )?
    .query_row(p, |r| r.get(0))
}

fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(n as i128).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl SqliteStore {
    /// `query_row` through the statement cache: `status` and `scan` ask the same few
    /// questions of every remediation, and parsing the SQL again each time cost more than
    /// answering it (a thousand rules).
    fn query_row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    /// Opens (creating if needed) the state file. The directory is created with mode 0700 and
    /// the file with 0600: samples are redacted, but the file still describes production errors.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let open_err = |message: String| StoreError::Open {
            path: display.clone(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                create_private_dir(dir).map_err(|e| {
                    open_err(format!("cannot create directory {}: {e}", dir.display()))
                })?;
            }
            check_writable(dir).map_err(|e| {
                open_err(format!("directory {} is not writable: {e}", dir.display()))
            })?;
        }
        let existed = path.exists();
        if !existed {
            create_private_file(path).map_err(|e| open_err(format!("cannot create: {e}")))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(e.to_string()))?;
        Self::init(conn, display)
    }

    /// Opens an existing state file read-only (`status`, `grep` never write).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        if !path.exists() {
            return Err(StoreError::Open {
                path: display,
                message: "no state file yet (run `recur scan` first)".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Open {
            path: display.clone(),
            message: e.to_string(),
        })?;
        prepare_once(&conn);
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| StoreError::Sql {
                path: display.clone(),
                source: e,
            })?;
        let store = SqliteStore {
            conn,
            path: display,
            open: None,
        };
        let v = store.user_version()?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: store.path,
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        if v < SCHEMA_VERSION {
            // Read-only commands never migrate; name one that does.
            return Err(StoreError::Open {
                path: store.path,
                message: format!(
                    "schema version {v} is older than this recur's ({SCHEMA_VERSION}); run `recur state migrate` (or any `recur scan`) once with write access to upgrade it"
                ),
            });
        }
        Ok(store)
    }

    /// A private in-memory database: `--no-state`.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            path: ":memory:".into(),
            message: e.to_string(),
        })?;
        Self::init(conn, ":memory:".into())
    }

    fn init(conn: Connection, path: String) -> Result<Self, StoreError> {
        prepare_once(&conn);
        super::rows::register(&conn).map_err(|e| StoreError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let store = SqliteStore {
            conn,
            path,
            open: None,
        };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store.sql(e))?;
        // A file that is not SQLite fails on its first read: call that corruption, by name.
        let v = store.user_version()?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: store.path,
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        if v == 0 {
            // A new database: larger pages than SQLite's 4 KiB default mean fewer page
            // allocations and splits for the occurrence rows and their two indexes (a scan
            // storing 163,000 occurrences ran 8% faster, on disk and in memory). Only possible
            // before the first table exists; older files keep theirs.
            store
                .conn
                .pragma_update(None, "page_size", PAGE_SIZE)
                .map_err(|e| store.sql(e))?;
        }
        if store.path != ":memory:" {
            store
                .conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| store.classify(e))?;
        }
        store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| store.sql(e))?;
        store
            .conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| store.sql(e))?;
        store.migrate(v)?;
        if v > 0 {
            // Cheap structural check, so a damaged file is refused before any work.
            let ok: String = store
                .conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| store.classify(e))?;
            if ok != "ok" {
                return Err(StoreError::Corrupt {
                    path: store.path,
                    message: ok,
                });
            }
        }
        Ok(store)
    }

    fn user_version(&self) -> Result<i64, StoreError> {
        self.query_row_cached("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.classify(e))
    }

    fn migrate(&self, from: i64) -> Result<(), StoreError> {
        if from == 0 {
            let sql =
                format!("BEGIN IMMEDIATE; {FRESH} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;");
            if let Err(e) = self.conn.execute_batch(&sql) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(self.classify(e));
            }
            return Ok(());
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let v = i as i64 + 1;
            let sql = format!("BEGIN IMMEDIATE; {step}; PRAGMA user_version = {v}; COMMIT;");
            if let Err(e) = self.conn.execute_batch(&sql) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(self.classify(e));
            }
        }
        Ok(())
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        self.classify(e)
    }

    /// Turns SQLite errors users can act on into specific messages.
    fn classify(&self, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: self.path.clone(),
                waited_ms: BUSY_TIMEOUT.as_millis() as u64,
            },
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    message: e.to_string(),
                }
            }
            Some(ErrorCode::ReadOnly)
            | Some(ErrorCode::CannotOpen)
            | Some(ErrorCode::PermissionDenied) => StoreError::Open {
                path: self.path.clone(),
                message: e.to_string(),
            },
            _ => StoreError::Sql {
                path: self.path.clone(),
                source: e,
            },
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn read_intent(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredIntent> {
        let kind: String = row.get(2)?;
        let suppressed: bool = row.get(7)?;
        let folded: String = row.get(8)?;
        let agg: Option<String> = row.get(9)?;
        let status = if suppressed {
            DeliveryStatus::Suppressed
        } else {
            agg.as_deref()
                .and_then(DeliveryStatus::parse)
                .unwrap_or(DeliveryStatus::Sent)
        };
        Ok(StoredIntent {
            key: row.get(0)?,
            remediation: row.get(1)?,
            kind: IntentKind::parse(&kind).unwrap_or(IntentKind::Open),
            episode_start: ts(row.get(3)?),
            count: row.get::<_, i64>(4)? as u64,
            due: ts(row.get(5)?),
            created_at: ts(row.get(6)?),
            status,
            folded: serde_json::from_str(&folded).unwrap_or_default(),
        })
    }
}

/// Aggregate delivery status of an intent: failed if any channel failed, else pending if any
/// is pending, else sent.
const INTENT_SELECT: &str = "SELECT i.key, i.remediation, i.kind, i.episode_start, i.count, i.due, i.created_at, i.suppressed, i.folded,
    (SELECT CASE WHEN SUM(d.status = 'failed') > 0 THEN 'failed'
                 WHEN SUM(d.status IN ('pending', 'sending')) > 0 THEN 'pending'
                 ELSE 'sent' END FROM deliveries d WHERE d.key = i.key)
    FROM intents i";

fn read_delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get(2)?;
    Ok(Delivery {
        key: row.get(0)?,
        channel: row.get(1)?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: row.get::<_, i64>(3)? as u32,
        next_attempt: row.get::<_, Option<i64>>(4)?.map(ts),
        last_error: row.get(5)?,
    })
}

impl Store for SqliteStore {
    fn input_done(
        &self,
        key: &str,
        size: u64,
        tail: &str,
        params: &str,
    ) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM inputs WHERE key = ?1 AND params = ?2 AND size = ?3 AND tail = ?4",
            )
            .and_then(|mut st| st.exists(params![key, params, size as i64, tail]))
            .map_err(|e| self.sql(e))
    }

    fn begin(&mut self, origin: Option<&Origin>) -> Result<(), StoreError> {
        self.abort();
        let classify = |e: rusqlite::Error| SqliteStore::classify_static(&self.path, e);
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(classify)?;
        let opened = (|| -> rusqlite::Result<OpenBatch> {
            let marks = self
                .conn
                .prepare_cached("SELECT remediation, before FROM prune_marks")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut batch = OpenBatch {
                now: ns(Timestamp::now()),
                marks,
                origin: None,
                replace: false,
                earlier: String::new(),
                rules: HashMap::new(),
                sources: HashMap::new(),
            };
            if let Some(o) = origin {
                batch.origin = Some(Err((o.path.clone(), o.key.clone(), o.size, o.tail.clone())));
                batch.replace = o.replace.is_some();
                let ids = self
                    .conn
                    .prepare_cached(
                        "SELECT id FROM origins WHERE input_key = ?1
                           AND ((input_size = ?2 AND input_tail = ?3) OR (source = ?4 AND input_size <= ?2))",
                    )?
                    .query_map(params![o.key, o.size as i64, o.tail, o.path], |r| {
                        r.get::<_, i64>(0)
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                // None on a first reading, the usual case: then there is nothing to look for.
                batch.earlier = ids
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
            }
            Ok(batch)
        })();
        match opened {
            Ok(b) => {
                self.open = Some(b);
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(classify(e))
            }
        }
    }

    fn add(&mut self, occurrences: &[NewOccurrence]) -> Result<Vec<usize>, StoreError> {
        let classify = |e: rusqlite::Error| SqliteStore::classify_static(&self.path, e);
        let Some(b) = self.open.as_mut() else {
            return Err(StoreError::Open {
                path: self.path.clone(),
                message: "no batch is open (internal error)".into(),
            });
        };
        let conn = &self.conn;
        let mut keyed = Vec::with_capacity(occurrences.len());
        for (i, o) in occurrences.iter().enumerate() {
            let pruned = match (b.marks.get(&*o.remediation), o.time) {
                (Some(&m), Some(t)) => ns(t) < m,
                _ => false,
            };
            if pruned {
                continue;
            }
            let rule = match b.rules.get(&o.remediation) {
                Some(&id) => id,
                None => {
                    let id = rule_id(conn, &o.remediation).map_err(classify)?;
                    b.rules.insert(o.remediation.clone(), id);
                    id
                }
            };
            let origin = match &b.origin {
                Some(Ok(id)) => *id,
                Some(Err((path, key, size, tail))) => {
                    let id = origin_id(conn, path, key, *size, tail).map_err(classify)?;
                    b.origin = Some(Ok(id));
                    id
                }
                None => match b.sources.get(&o.source) {
                    Some(&id) => id,
                    None => {
                        let id = origin_id(conn, &o.source, "", 0, "").map_err(classify)?;
                        b.sources.insert(o.source.clone(), id);
                        id
                    }
                },
            };
            keyed.push((rule, &o.identity, i, origin));
        }
        // In key order: rows inserted in the order of the primary key fill pages one after
        // another instead of splitting them at random (identities are hashes). Of two
        // readings of one event, the batch's own order decides (the later one's time wins).
        keyed.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let new = insert_all(conn, &keyed, occurrences, b.now).map_err(classify)?;
        // An event already stored (by an earlier batch, or earlier in this one) is not news;
        // a replacing reading gives it its time and signature, and takes it over when it was
        // this input's before. In key order, so that of two readings in this batch the later
        // one's time is the one kept. Few rows on a first reading: those stored before by
        // another input.
        if b.replace && new.len() < keyed.len() {
            let mut upd = conn
                .prepare_cached(&format!(
                    "UPDATE occurrences SET event_time = ?3, signature = ?4, read_at = ?5,
                        origin = CASE WHEN origin IN ({}) THEN ?6 ELSE origin END
                     WHERE rule = ?1 AND identity = ?2",
                    b.earlier
                ))
                .map_err(classify)?;
            let mut buf = [0u8; 16];
            for &(rule, identity, i, origin) in &keyed {
                if new.binary_search(&i).is_ok() {
                    continue;
                }
                let o = &occurrences[i];
                let id = rusqlite::types::ToSqlOutput::Borrowed(identity_sql(identity, &mut buf));
                upd.execute(params![
                    rule,
                    id,
                    o.time.map(ns),
                    o.signature,
                    b.now,
                    origin
                ])
                .map_err(classify)?;
            }
        }
        Ok(new)
    }

    fn finish(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let Some(b) = self.open.take() else {
            return Err(StoreError::Open {
                path: self.path.clone(),
                message: "no batch is open (internal error)".into(),
            });
        };
        let tx = &self.conn;
        let done = (|| -> rusqlite::Result<()> {
            // What this input contributed before and did not bring again goes.
            let replace = batch.origin.as_ref().and_then(|o| o.replace.as_ref());
            if let Some(r) = replace.filter(|_| !b.earlier.is_empty()) {
                let mut del = tx.prepare_cached(&format!(
                    "DELETE FROM occurrences
                     WHERE rule = (SELECT id FROM rule_refs WHERE name = ?1) AND origin IN ({})
                       AND read_at != ?2
                       AND CASE WHEN event_time IS NULL THEN ?3
                                ELSE (?4 IS NULL OR event_time >= ?4) AND (?5 IS NULL OR event_time < ?5) END",
                    b.earlier
                ))?;
                let unbounded = r.since.is_none() && r.until.is_none();
                for rem in &r.remediations {
                    del.execute(params![
                        rem,
                        b.now,
                        unbounded,
                        r.since.map(ns),
                        r.until.map(ns)
                    ])?;
                }
            }
            // One statement for all the cells (a scan of 100 rules over two days of logs
            // brings 4,600), see `super::rows`.
            let mut cells = super::rows::Rows::new(5);
            for c in &batch.coverage {
                if b.marks
                    .get(&c.remediation)
                    .is_some_and(|&m| ns(c.max_time) < m)
                {
                    continue;
                }
                use rusqlite::types::Value::{Integer, Text};
                cells.push([
                    Text(c.remediation.clone()),
                    Integer(c.bucket),
                    Text(c.input.clone()),
                    Integer(c.count as i64),
                    Integer(ns(c.max_time)),
                ]);
            }
            if cells.len() > 0 {
                // `WHERE true`: without it SQLite would read `ON CONFLICT` as a join's.
                tx.prepare_cached(
                    "INSERT INTO coverage (remediation, bucket, input, count, max_time)
                     SELECT c0, c1, c2, c3, c4 FROM recur_rows(?1) WHERE true
                     ON CONFLICT (remediation, bucket, input) DO UPDATE SET
                        count = max(count, excluded.count), max_time = max(max_time, excluded.max_time)",
                )?
                .execute(params![cells.bind()])?;
            }
            let mut inp = tx.prepare_cached(
                "INSERT OR REPLACE INTO inputs (key, params, path, size, tail, scanned_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for i in &batch.inputs {
                inp.execute(params![
                    i.key,
                    i.params,
                    i.path,
                    i.size as i64,
                    i.tail,
                    b.now
                ])?;
            }
            let mut cp = tx.prepare_cached(
                "INSERT OR REPLACE INTO checkpoints (path, dev, inode, head_hash, head_len, offset, line, tail_hash, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for c in &batch.checkpoints {
                cp.execute(params![
                    c.path,
                    c.dev as i64,
                    c.inode as i64,
                    c.head_hash,
                    c.head_len as i64,
                    c.offset as i64,
                    c.line as i64,
                    c.tail_hash,
                    c.size as i64
                ])?;
            }
            for p in &batch.forget_checkpoints {
                tx.execute("DELETE FROM checkpoints WHERE path = ?1", params![p])?;
            }
            tx.execute_batch("COMMIT")
        })();
        done.map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            SqliteStore::classify_static(&self.path, e)
        })
    }

    fn abort(&mut self) {
        if self.open.take().is_some() || !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn occurrence_times(&self, remediation: &str) -> Result<Vec<Option<Timestamp>>, StoreError> {
        // A range of the table's primary key (lean rows), sorted here: cheaper than keeping a
        // time index over every row up to date (see `V4`).
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT event_time FROM occurrences
                 WHERE rule = (SELECT id FROM rule_refs WHERE name = ?1)",
            )
            .map_err(|e| self.sql(e))?;
        // Stepped raw: a busy remediation has every event of a day here (163,000 rows for a
        // GB at a 5% match rate), read at the end of every scan.
        st.raw_bind_parameter(1, remediation)
            .map_err(|e| self.sql(e))?;
        let mut rows = st.raw_query();
        let mut times: Vec<Option<i64>> = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            times.push(match r.get_ref(0).map_err(|e| self.sql(e))? {
                rusqlite::types::ValueRef::Integer(t) => Some(t),
                _ => None,
            });
        }
        // Untimed last. Hashed identities lead with the time, so mostly in order already.
        times.sort_unstable_by_key(|t| (t.is_none(), *t));
        Ok(times.into_iter().map(|t| t.map(ts)).collect())
    }

    fn samples_between(
        &self,
        remediation: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<StoredOccurrence>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {OCCURRENCE_COLUMNS} FROM occurrences JOIN origins g ON g.id = origin
                     WHERE rule = (SELECT id FROM rule_refs WHERE name = ?1)
                       AND event_time >= ?2 AND event_time <= ?3 AND sample != ''
                     ORDER BY event_time, identity LIMIT ?4"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(
                params![
                    remediation,
                    from.map_or(i64::MIN, ns),
                    to.map_or(i64::MAX, ns),
                    limit.min(i64::MAX as usize) as i64
                ],
                occurrence_row,
            )
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn coverage(
        &self,
        remediation: &str,
        since: Option<Timestamp>,
    ) -> Result<CoverageSummary, StoreError> {
        let since_bucket = since
            .map(|t| t.as_second().div_euclid(3600) * 3600)
            .unwrap_or(i64::MIN);
        self
            .query_row_cached(
                // Per hour first, in the key's order, then over the hours: the same figures
                // as `COUNT(DISTINCT bucket)` over the cells without the two temporary
                // B-trees it builds (the report asks this of every rule at the end of a run).
                "SELECT COALESCE(SUM(c), 0), MAX(m), COALESCE(SUM(CASE WHEN bucket >= ?2 THEN c ELSE 0 END), 0),
                        COUNT(*), COUNT(CASE WHEN bucket >= ?2 THEN 1 END), COALESCE(MIN(mn), 0) > 0
                 FROM (SELECT bucket, SUM(count) AS c, MAX(max_time) AS m, MIN(count) AS mn
                       FROM coverage WHERE remediation = ?1 GROUP BY bucket)",
                params![remediation, since_bucket],
                |r| {
                    Ok(CoverageSummary {
                        events: r.get::<_, i64>(0)? as u64,
                        last: r.get::<_, Option<i64>>(1)?.map(ts),
                        events_since: r.get::<_, i64>(2)? as u64,
                        hours: r.get::<_, i64>(3)? as u64,
                        hours_since: r.get::<_, i64>(4)? as u64,
                        counted: r.get(5)?,
                    })
                },
            )
            .map_err(|e| self.sql(e))
    }

    fn note_remediations(
        &mut self,
        rules: &[crate::rule::Remediation],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let classify = |e: rusqlite::Error| SqliteStore::classify_static(&path, e);
        let tx = self.conn.transaction().map_err(classify)?;
        {
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO remediations (id, title, owner, analysis, last_loaded) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(classify)?;
            for r in rules {
                st.execute(params![r.id, r.title, r.owner, r.analysis, ns(now)])
                    .map_err(classify)?;
            }
        }
        tx.commit().map_err(classify)
    }

    fn known_remediations(&self) -> Result<Vec<KnownRemediation>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, title, owner, analysis, last_loaded FROM remediations ORDER BY id")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(KnownRemediation {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    owner: r.get(2)?,
                    analysis: r.get(3)?,
                    last_loaded: ts(r.get(4)?),
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn add_intents(
        &mut self,
        intents: &[(IntentDraft, DeliveryStatus, Vec<String>, Vec<String>)],
        now: Timestamp,
    ) -> Result<Vec<StoredIntent>, StoreError> {
        let path = self.path.clone();
        let classify = |e: rusqlite::Error| SqliteStore::classify_static(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(classify)?;
        let mut new_keys = Vec::new();
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO intents (key, remediation, kind, episode_start, count, due, created_at, suppressed, folded)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(classify)?;
            let mut del = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO deliveries (key, channel, status, attempts, next_attempt, last_error)
                     VALUES (?1, ?2, 'pending', 0, ?3, NULL)",
                )
                .map_err(classify)?;
            for (d, status, channels, folded) in intents {
                let suppressed = *status == DeliveryStatus::Suppressed;
                let n = ins
                    .execute(params![
                        d.key,
                        d.remediation,
                        d.kind.as_str(),
                        ns(d.episode_start),
                        d.count as i64,
                        ns(d.due),
                        ns(now),
                        suppressed,
                        serde_json::to_string(folded).unwrap_or_else(|_| "[]".into())
                    ])
                    .map_err(classify)?;
                if n == 0 {
                    continue;
                }
                if !suppressed {
                    for ch in channels {
                        del.execute(params![d.key, ch, ns(now)]).map_err(classify)?;
                    }
                }
                new_keys.push(d.key.clone());
            }
        }
        tx.commit().map_err(classify)?;
        let mut out = Vec::new();
        for k in new_keys {
            if let Some(i) = self.intent(&k)? {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn intents(&self, remediation: Option<&str>) -> Result<Vec<StoredIntent>, StoreError> {
        let sql =
            format!("{INTENT_SELECT} WHERE ?1 IS NULL OR i.remediation = ?1 ORDER BY i.due, i.key");
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![remediation], SqliteStore::read_intent)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn intent(&self, key: &str) -> Result<Option<StoredIntent>, StoreError> {
        let sql = format!("{INTENT_SELECT} WHERE i.key = ?1");
        self.query_row_cached(&sql, params![key], SqliteStore::read_intent)
            .optional()
            .map_err(|e| self.sql(e))
    }

    fn due_deliveries(&self, now: Timestamp) -> Result<Vec<Delivery>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT d.key, d.channel, d.status, d.attempts, d.next_attempt, d.last_error
                 FROM deliveries d JOIN intents i ON i.key = d.key
                 WHERE d.status IN ('pending', 'sending') AND (d.next_attempt IS NULL OR d.next_attempt <= ?1)
                 ORDER BY i.due, d.key, d.channel",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![ns(now)], read_delivery)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn deliveries(&self, key: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT key, channel, status, attempts, next_attempt, last_error FROM deliveries
                 WHERE ?1 IS NULL OR key = ?1 ORDER BY key, channel",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![key], read_delivery)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn claim_delivery(
        &mut self,
        key: &str,
        channel: &str,
        due_by: Timestamp,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        // One statement, so the check and the claim are atomic: SQLite serialises writers, and
        // the second of two racing runs finds the row `sending` with a lease in the future.
        // While claimed, `next_attempt` holds the lease's end.
        self.query_row_cached(
            "UPDATE deliveries SET status = 'sending', next_attempt = ?5
                 WHERE key = ?1 AND channel = ?2
                   AND ((status = 'pending' AND (next_attempt IS NULL OR next_attempt <= ?3))
                        OR (status = 'sending' AND next_attempt <= ?4))
                 RETURNING key, channel, status, attempts, next_attempt, last_error",
            params![key, channel, ns(due_by), ns(now), ns(lease_until)],
            read_delivery,
        )
        .optional()
        .map_err(|e| self.sql(e))
    }

    fn release_delivery(&mut self, key: &str, channel: &str) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE deliveries SET status = 'pending', next_attempt = NULL
                 WHERE key = ?1 AND channel = ?2 AND status = 'sending'",
                params![key, channel],
            )
            .map(|n| n > 0)
            .map_err(|e| self.sql(e))
    }

    fn count_deliveries(&self, status: DeliveryStatus) -> Result<u64, StoreError> {
        self.query_row_cached(
            // A row being sent is still pending until its result is recorded.
            "SELECT count(*) FROM deliveries
                 WHERE status = ?1 OR (?1 = 'pending' AND status = 'sending')",
            params![status.as_str()],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(|e| self.sql(e))
    }

    fn update_delivery(&mut self, d: &Delivery) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE deliveries SET status = ?3, attempts = ?4, next_attempt = ?5, last_error = ?6 WHERE key = ?1 AND channel = ?2",
                params![d.key, d.channel, d.status.as_str(), d.attempts as i64, d.next_attempt.map(ns), d.last_error],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT path, dev, inode, head_hash, head_len, offset, line, tail_hash, size FROM checkpoints ORDER BY path")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Checkpoint {
                    path: r.get(0)?,
                    dev: r.get::<_, i64>(1)? as u64,
                    inode: r.get::<_, i64>(2)? as u64,
                    head_hash: r.get(3)?,
                    head_len: r.get::<_, i64>(4)? as u64,
                    offset: r.get::<_, i64>(5)? as u64,
                    line: r.get::<_, i64>(6)? as u64,
                    tail_hash: r.get(7)?,
                    size: r.get::<_, i64>(8)? as u64,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn episodes(&self, remediation: &str) -> Result<Vec<StoredEpisode>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT remediation, identity, start, first_seen, last_seen, count, reminders, merged_into, active, seq
                 FROM episodes WHERE remediation = ?1 ORDER BY start, identity",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![remediation], |r| {
                Ok(StoredEpisode {
                    remediation: r.get(0)?,
                    identity: ts(r.get(1)?),
                    start: ts(r.get(2)?),
                    first_seen: ts(r.get(3)?),
                    last_seen: ts(r.get(4)?),
                    count: r.get::<_, i64>(5)? as u64,
                    reminders: r.get::<_, i64>(6)? as u64,
                    merged_into: r.get::<_, Option<i64>>(7)?.map(ts),
                    active: r.get(8)?,
                    seq: r.get(9)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn record_episodes(
        &mut self,
        remediation: &str,
        current: &[crate::track::Episode],
        merged: &[(Timestamp, Timestamp)],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let classify = |e: rusqlite::Error| SqliteStore::classify_static(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(classify)?;
        {
            tx.execute(
                "UPDATE episodes SET active = 0 WHERE remediation = ?1",
                params![remediation],
            )
            .map_err(classify)?;
            let mut seq: i64 = tx
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM episodes", [], |r| {
                    r.get(0)
                })
                .map_err(classify)?;
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO episodes (remediation, identity, start, first_seen, last_seen, count, reminders, merged_into, active, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 1, ?8)
                     ON CONFLICT (remediation, identity) DO UPDATE SET
                        start = excluded.start, first_seen = excluded.first_seen,
                        last_seen = excluded.last_seen, count = excluded.count,
                        reminders = excluded.reminders, merged_into = NULL, active = 1",
                )
                .map_err(classify)?;
            for ep in current {
                seq += 1;
                up.execute(params![
                    remediation,
                    ns(ep.identity),
                    ns(ep.start),
                    ns(ep.first_seen),
                    ns(ep.last_seen),
                    ep.count as i64,
                    ep.reminders.len() as i64,
                    seq
                ])
                .map_err(classify)?;
            }
            let mut mg = tx
                .prepare_cached(
                    "UPDATE episodes SET merged_into = ?3, active = 0 WHERE remediation = ?1 AND identity = ?2",
                )
                .map_err(classify)?;
            for (m, into) in merged {
                mg.execute(params![remediation, ns(*m), ns(*into)])
                    .map_err(classify)?;
            }
        }
        tx.commit().map_err(classify)
    }

    /// Deletes, per remediation, occurrences, coverage and episodes older than its prune mark,
    /// and then settled notifications older than `before` whose episode is gone, and input
    /// fingerprints recorded before `before`.
    ///
    /// The mark is `before`, moved back to the first event of an episode that lasts past it:
    /// an episode is kept whole or not at all, so recomputing it after the prune gives the same
    /// episode, the same identity and the same notification keys. The mark is remembered and
    /// later commits ignore events before it, so re-reading a pruned input (its fingerprint
    /// is gone) neither counts nor notifies anything again.
    fn prune(&mut self, before: Timestamp) -> Result<PruneStats, StoreError> {
        let path = self.path.clone();
        let classify = |e: rusqlite::Error| SqliteStore::classify_static(&path, e);
        let cutoff = ns(before);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(classify)?;
        let mut stats = PruneStats::default();
        {
            let remediations: Vec<String> = {
                let mut st = tx
                    .prepare(
                        "SELECT id FROM remediations UNION SELECT name FROM rule_refs
                         UNION SELECT remediation FROM coverage UNION SELECT remediation FROM episodes",
                    )
                    .map_err(classify)?;
                st.query_map([], |r| r.get(0))
                    .map_err(classify)?
                    .collect::<Result<_, _>>()
                    .map_err(classify)?
            };
            for rem in &remediations {
                let spanning: Option<i64> = tx
                    .query_row(
                        "SELECT MIN(first_seen) FROM episodes
                         WHERE remediation = ?1 AND active = 1 AND last_seen >= ?2 AND first_seen < ?2",
                        params![rem, cutoff],
                        |r| r.get(0),
                    )
                    .map_err(classify)?;
                let mark = spanning.map_or(cutoff, |f| f.min(cutoff));
                // The mark in force: a later one recorded earlier wins.
                let mark: i64 = tx
                    .query_row(
                        "INSERT INTO prune_marks (remediation, before) VALUES (?1, ?2)
                         ON CONFLICT (remediation) DO UPDATE SET before = max(before, excluded.before)
                         RETURNING before",
                        params![rem, mark],
                        |r| r.get(0),
                    )
                    .map_err(classify)?;
                stats.occurrences += tx
                    .execute(
                        "DELETE FROM occurrences WHERE rule = (SELECT id FROM rule_refs WHERE name = ?1)
                           AND event_time IS NOT NULL AND event_time < ?2",
                        params![rem, mark],
                    )
                    .map_err(classify)? as u64;
                stats.coverage += tx
                    .execute(
                        "DELETE FROM coverage WHERE remediation = ?1 AND max_time < ?2",
                        params![rem, mark],
                    )
                    .map_err(classify)? as u64;
                stats.episodes += tx
                    .execute(
                        "DELETE FROM episodes WHERE remediation = ?1 AND last_seen < ?2",
                        params![rem, mark],
                    )
                    .map_err(classify)? as u64;
            }
            // Only settled notifications go (a pending one must still be delivered), and only
            // once their episode is gone (its keys must stay known while it can recur).
            stats.intents = tx
                .execute(
                    "DELETE FROM intents WHERE due < ?1
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.key = intents.key AND d.status IN ('pending', 'sending'))
                       AND NOT EXISTS (SELECT 1 FROM episodes e WHERE e.remediation = intents.remediation AND e.identity = intents.episode_start)",
                    params![cutoff],
                )
                .map_err(classify)? as u64;
            stats.inputs = tx
                .execute("DELETE FROM inputs WHERE scanned_at < ?1", params![cutoff])
                .map_err(classify)? as u64;
            // Origins nothing refers to any more (their occurrences were pruned).
            tx.execute(
                "DELETE FROM origins WHERE NOT EXISTS (SELECT 1 FROM occurrences WHERE origin = origins.id)",
                [],
            )
            .map_err(classify)?;
        }
        tx.commit().map_err(classify)?;
        Ok(stats)
    }
}

impl SqliteStore {
    fn classify_static(path: &str, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: path.to_string(),
                waited_ms: BUSY_TIMEOUT.as_millis() as u64,
            },
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path: path.to_string(),
                    message: e.to_string(),
                }
            }
            _ => StoreError::Sql {
                path: path.to_string(),
                source: e,
            },
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Fails early on a read-only state directory, before any input is read.
fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe: PathBuf = dir.join(format!(".recur-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
impl SqliteStore {
    /// All occurrences of a remediation, timed ones sorted by time, untimed last: whole rows,
    /// for tests to look at (the stages need only times and samples).
    fn occurrences(&self, remediation: &str) -> Result<Vec<StoredOccurrence>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {OCCURRENCE_COLUMNS} FROM occurrences JOIN origins g ON g.id = origin
                     WHERE rule = (SELECT id FROM rule_refs WHERE name = ?1)
                     ORDER BY event_time IS NULL, event_time, identity"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![remediation], occurrence_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::IntentKind;

    fn occ(id: &str, secs: i64) -> NewOccurrence {
        NewOccurrence {
            remediation: "R".into(),
            identity: id.into(),
            time: Some(Timestamp::from_second(secs).unwrap()),
            signature: 0,
            source: "a.log".into(),
            line: 1,
            sample: "{}".into(),
        }
    }

    #[test]
    fn commit_is_idempotent_by_identity() {
        let mut s = SqliteStore::in_memory().unwrap();
        let b = Batch {
            occurrences: vec![occ("h:1", 10), occ("h:2", 20)],
            ..Default::default()
        };
        assert_eq!(s.commit(&b).unwrap().new_occurrences, vec![0, 1]);
        assert_eq!(s.commit(&b).unwrap().new_occurrences, Vec::<usize>::new());
        assert_eq!(s.occurrences("R").unwrap().len(), 2);
    }

    #[test]
    fn a_duplicate_within_one_batch_is_new_once() {
        let mut s = SqliteStore::in_memory().unwrap();
        let b = Batch {
            occurrences: vec![occ("h:2", 20), occ("h:1", 10), occ("h:2", 20)],
            ..Default::default()
        };
        assert_eq!(s.commit(&b).unwrap().new_occurrences, vec![0, 1]);
    }

    #[test]
    fn times_and_samples_are_read_without_the_rest() {
        let mut s = SqliteStore::in_memory().unwrap();
        let mut untimed = occ("h:0", 0);
        untimed.time = None;
        let mut no_sample = occ("h:4", 25);
        no_sample.sample.clear();
        let b = Batch {
            occurrences: vec![
                occ("h:3", 30),
                untimed,
                occ("h:1", 10),
                no_sample,
                occ("h:2", 20),
            ],
            ..Default::default()
        };
        s.commit(&b).unwrap();
        let t = |secs| Some(Timestamp::from_second(secs).unwrap());
        assert_eq!(
            s.occurrence_times("R").unwrap(),
            vec![t(10), t(20), t(25), t(30), None]
        );
        let ids = |v: Vec<StoredOccurrence>| v.into_iter().map(|o| o.identity).collect::<Vec<_>>();
        // Inclusive bounds, oldest first, only occurrences that carry a sample.
        assert_eq!(
            ids(s.samples_between("R", t(20), t(30), 10).unwrap()),
            ["h:2", "h:3"]
        );
        assert_eq!(
            ids(s.samples_between("R", t(11), None, 10).unwrap()),
            ["h:2", "h:3"]
        );
        assert_eq!(
            ids(s.samples_between("R", None, None, 2).unwrap()),
            ["h:1", "h:2"]
        );
        assert!(s.samples_between("R", t(21), t(29), 10).unwrap().is_empty());
        assert!(
            s.samples_between("other", None, None, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn coverage_summary_counts_each_hour_once() {
        let mut s = SqliteStore::in_memory().unwrap();
        let cell = |bucket: i64, input: &str, count| CoverageCell {
            remediation: "R".into(),
            bucket,
            input: input.into(),
            count,
            max_time: Timestamp::from_second(bucket + 60).unwrap(),
        };
        let empty = s.coverage("R", None).unwrap();
        assert_eq!(
            (empty.events, empty.last, empty.hours, empty.counted),
            (0, None, 0, false)
        );
        // Two inputs in the first hour, one in each of two later hours.
        s.commit(&Batch {
            coverage: vec![
                cell(3600, "a", 5),
                cell(3600, "b", 2),
                cell(7200, "a", 4),
                cell(10800, "b", 1),
            ],
            ..Default::default()
        })
        .unwrap();
        let c = s.coverage("R", Timestamp::from_second(7300).ok()).unwrap();
        assert_eq!(c.events, 12);
        assert_eq!(c.events_since, 5);
        assert_eq!((c.hours, c.hours_since), (3, 2));
        assert_eq!(c.last, Timestamp::from_second(10860).ok());
        assert!(c.counted);
        // A sampled cell (no count) makes the counts a lower bound.
        s.commit(&Batch {
            coverage: vec![cell(14400, "a", 0)],
            ..Default::default()
        })
        .unwrap();
        let c = s.coverage("R", None).unwrap();
        assert_eq!((c.hours, c.hours_since, c.counted), (4, 4, false));
    }

    #[test]
    fn coverage_takes_the_max_per_input_bucket() {
        let mut s = SqliteStore::in_memory().unwrap();
        let cell = |input: &str, count| CoverageCell {
            remediation: "R".into(),
            bucket: 3600,
            input: input.into(),
            count,
            max_time: Timestamp::from_second(3700).unwrap(),
        };
        s.commit(&Batch {
            coverage: vec![cell("a", 5)],
            ..Default::default()
        })
        .unwrap();
        s.commit(&Batch {
            coverage: vec![cell("a", 5), cell("b", 2)],
            ..Default::default()
        })
        .unwrap();
        let c = s.coverage("R", None).unwrap();
        assert_eq!(c.events, 7);
        assert_eq!(c.last, Some(Timestamp::from_second(3700).unwrap()));
    }

    #[test]
    fn intents_are_created_once_with_one_delivery_per_channel() {
        let mut s = SqliteStore::in_memory().unwrap();
        let t = Timestamp::from_second(1000).unwrap();
        let d = IntentDraft {
            remediation: "R".into(),
            kind: IntentKind::Open,
            key: "R/x/0".into(),
            episode_start: t,
            count: 1,
            due: t,
        };
        let row = (
            d,
            DeliveryStatus::Pending,
            vec!["console".to_string(), "hook".to_string()],
            vec![],
        );
        assert_eq!(
            s.add_intents(std::slice::from_ref(&row), t).unwrap().len(),
            1
        );
        assert_eq!(s.add_intents(&[row], t).unwrap().len(), 0);
        assert_eq!(s.due_deliveries(t).unwrap().len(), 2);
        assert_eq!(s.count_deliveries(DeliveryStatus::Pending).unwrap(), 2);
        let mut del = s.deliveries(Some("R/x/0")).unwrap()[0].clone();
        del.status = DeliveryStatus::Sent;
        s.update_delivery(&del).unwrap();
        assert_eq!(s.count_deliveries(DeliveryStatus::Pending).unwrap(), 1);
        assert_eq!(s.count_deliveries(DeliveryStatus::Sent).unwrap(), 1);
        assert_eq!(
            s.intent("R/x/0").unwrap().unwrap().status,
            DeliveryStatus::Pending
        );
        let mut del = s.deliveries(Some("R/x/0")).unwrap()[1].clone();
        del.status = DeliveryStatus::Sent;
        s.update_delivery(&del).unwrap();
        assert_eq!(
            s.intent("R/x/0").unwrap().unwrap().status,
            DeliveryStatus::Sent
        );
    }

    #[test]
    fn file_is_private_and_reopens_at_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.db");
        {
            let mut s = SqliteStore::open(&p).unwrap();
            s.commit(&Batch {
                occurrences: vec![occ("h:1", 1)],
                ..Default::default()
            })
            .unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let s = SqliteStore::open(&p).unwrap();
        assert_eq!(s.occurrences("R").unwrap().len(), 1);
        assert_eq!(s.user_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        drop(SqliteStore::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        let e = SqliteStore::open(&p).err().unwrap();
        assert!(matches!(e, StoreError::TooNew { .. }), "{e}");
        assert!(e.to_string().contains("upgrade recur"));
    }

    #[test]
    fn garbage_file_is_refused_not_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
        let e = SqliteStore::open(&p).err().unwrap();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("move it aside"));
        assert_eq!(std::fs::read(&p).unwrap(), vec![0x42u8; 8192]);
    }

    #[test]
    fn locked_database_fails_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        drop(SqliteStore::open(&p).unwrap());
        let holder = Connection::open(&p).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let mut s = SqliteStore::open(&p).unwrap();
        s.conn.busy_timeout(Duration::from_millis(100)).unwrap();
        let e = s
            .commit(&Batch {
                occurrences: vec![occ("h:1", 1)],
                ..Default::default()
            })
            .err()
            .unwrap();
        assert!(matches!(e, StoreError::Locked { .. }), "{e}");
        assert!(e.to_string().contains("locked by another recur process"));
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory_is_an_error_before_work() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permission bits; the check is then meaningless, so only assert as a user.
        let probe = ro.join("probe");
        if std::fs::write(&probe, b"").is_ok() {
            let _ = std::fs::remove_file(&probe);
            return;
        }
        let e = SqliteStore::open(&ro.join("state.db")).err().unwrap();
        assert!(e.to_string().contains("not writable"), "{e}");
    }

    #[test]
    fn prune_keeps_pending_notifications() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.commit(&Batch {
            occurrences: vec![occ("h:1", 10), occ("h:2", 5000)],
            ..Default::default()
        })
        .unwrap();
        let t = Timestamp::from_second(10).unwrap();
        let d = IntentDraft {
            remediation: "R".into(),
            kind: IntentKind::Open,
            key: "k".into(),
            episode_start: t,
            count: 1,
            due: t,
        };
        s.add_intents(
            &[(d, DeliveryStatus::Pending, vec!["console".into()], vec![])],
            t,
        )
        .unwrap();
        let st = s.prune(Timestamp::from_second(100).unwrap()).unwrap();
        assert_eq!(st.occurrences, 1);
        assert_eq!(st.intents, 0);
        assert_eq!(s.occurrences("R").unwrap().len(), 1);
    }

    /// A version-1 file, as recur wrote it before episodes were recorded.
    fn v1_file(p: &Path) {
        let c = Connection::open(p).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        let t = ns(Timestamp::from_second(1_757_492_400).unwrap()); // 2025-09-10T08:20:00Z
        c.execute(
            "INSERT INTO occurrences VALUES ('R', 'h:1', ?1, 0, 'late.jsonl', 1, '{}', 0)",
            params![t],
        )
        .unwrap();
        c.execute(
            "INSERT INTO occurrences VALUES ('R', ?2, ?1, 0, 'late.jsonl', 2, '', 0)",
            params![t + 1, HASHED],
        )
        .unwrap();
        c.execute(
            "INSERT INTO inputs VALUES ('k1', 'p', 'late.jsonl', 100, 0)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO intents VALUES ('R/20250910T082000Z/0', 'R', 'open', ?1, 1, ?1, 5, 0, '[]')",
            params![t],
        )
        .unwrap();
    }

    /// A hashed identity as versions before 4 wrote it.
    const HASHED: &str = "h:00ff3a9e4ab44f1cc6115a9fcede2c01";

    /// A new database made with [`FRESH`] has what one made by running every migration has.
    #[test]
    fn a_new_database_has_the_migrated_schema() {
        let schema = |c: &Connection| -> Vec<(String, String, String, Option<String>)> {
            c.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let stepped = Connection::open_in_memory().unwrap();
        for step in MIGRATIONS {
            stepped.execute_batch(step).unwrap();
        }
        let fresh = Connection::open_in_memory().unwrap();
        fresh.execute_batch(FRESH).unwrap();
        assert_eq!(schema(&fresh), schema(&stepped));
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
        let s = SqliteStore::in_memory().unwrap();
        assert_eq!(schema(&s.conn), schema(&stepped));
        assert_eq!(s.user_version().unwrap(), SCHEMA_VERSION);
    }

    /// The version-5 rewrite in SQL gives what [`Identity::from_parts`] gives, for times
    /// before and after 1970 and for untimed rows; text identities stay as they are.
    #[test]
    fn the_version_5_identities_are_what_this_version_computes() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE occurrences (identity BLOB PRIMARY KEY, event_time INTEGER) WITHOUT ROWID",
        )
        .unwrap();
        let old: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        let times = [
            None,
            Some(0i64),
            Some(1_757_492_400_000_000_001),
            Some(-5),
            Some(i64::MIN),
            Some(i64::MAX),
        ];
        for (i, t) in times.iter().enumerate() {
            c.execute(
                "INSERT INTO occurrences VALUES (?1, ?2)",
                params![(old + i as u128).to_be_bytes(), t],
            )
            .unwrap();
        }
        c.execute("INSERT INTO occurrences VALUES ('id:x', 7)", [])
            .unwrap();
        c.execute_batch(V5).unwrap();
        for (i, t) in times.iter().enumerate() {
            let time = t.map(|t| Timestamp::from_nanosecond(t as i128).unwrap());
            let Identity::Hash(want) = Identity::from_parts(time, (old + i as u128) as u64) else {
                unreachable!()
            };
            let got: Vec<u8> = c
                .query_row(
                    "SELECT identity FROM occurrences WHERE event_time IS ?1",
                    params![t],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(got, want.to_be_bytes(), "time {t:?}");
        }
        let text: String = c
            .query_row(
                "SELECT identity FROM occurrences WHERE event_time = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(text, "id:x");
    }

    #[test]
    fn a_version_1_file_migrates_and_keeps_its_episode_identities() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        v1_file(&p);
        // Read-only commands refuse and name the command that migrates.
        let e = SqliteStore::open_read_only(&p).err().unwrap();
        assert!(e.to_string().contains("recur state migrate"), "{e}");
        let s = SqliteStore::open(&p).unwrap();
        assert_eq!(s.user_version().unwrap(), SCHEMA_VERSION);
        let eps = s.episodes("R").unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(
            crate::track::episode::intent_key("R", eps[0].identity, 0),
            "R/20250910T082000Z/0"
        );
        assert!(eps[0].active);
        let (key, size): (String, i64) = s
            .conn
            .query_row(
                "SELECT input_key, input_size FROM occurrences JOIN origins g ON g.id = origin
                 WHERE identity = 'h:1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((key.as_str(), size), ("k1", 100), "attributed to its input");
        // Version 4 keeps a hashed identity as 16 bytes, any other as text; both read back
        // as they were written.
        let kinds: Vec<String> = s
            .conn
            .prepare("SELECT typeof(identity) FROM occurrences ORDER BY line")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kinds, ["text", "blob"]);
        // Version 5 leads a hashed identity with its event time and keeps the hash's low
        // 64 bits: what this version computes for the same record.
        let o = s.occurrences("R").unwrap();
        let ids: Vec<&str> = o.iter().map(|o| o.identity.as_str()).collect();
        let Identity::Hash(old) = Identity::parse(HASHED) else {
            unreachable!()
        };
        let time = Timestamp::from_nanosecond(
            ns(Timestamp::from_second(1_757_492_400).unwrap()) as i128 + 1,
        )
        .unwrap();
        let now = Identity::from_parts(Some(time), old as u64);
        assert_eq!(ids, ["h:1", now.to_string().as_str()]);
        assert_eq!(o[0].source, "late.jsonl");
        // The same event read again is the same occurrence.
        let mut s = s;
        let again = Batch {
            occurrences: vec![NewOccurrence {
                line: 2,
                identity: now,
                ..occ(HASHED, 0)
            }],
            ..Default::default()
        };
        assert!(matches!(again.occurrences[0].identity, Identity::Hash(_)));
        assert!(s.commit(&again).unwrap().new_occurrences.is_empty());
        // The old fingerprint has no tail hash: the input is read once more, harmlessly.
        assert!(!s.input_done("k1", 100, "t", "p").unwrap());
        drop(s);
        assert!(SqliteStore::open_read_only(&p).is_ok());
    }

    fn origin(key: &str, size: u64, tail: &str, path: &str) -> Origin {
        Origin {
            key: key.into(),
            size,
            tail: tail.into(),
            path: path.into(),
            replace: Some(Replace {
                remediations: vec!["R".into()],
                since: None,
                until: None,
            }),
        }
    }

    #[test]
    fn a_re_read_replaces_what_the_input_contributed() {
        let at = |id: &str, secs, path: &str| NewOccurrence {
            source: path.into(),
            ..occ(id, secs)
        };
        let ids = |s: &SqliteStore| -> Vec<String> {
            s.occurrences("R")
                .unwrap()
                .into_iter()
                .map(|o| o.identity)
                .collect()
        };
        let mut s = SqliteStore::in_memory().unwrap();
        let b = Batch {
            occurrences: vec![at("h:1", 10, "a.log"), at("h:2", 20, "a.log")],
            origin: Some(origin("k", 100, "t", "a.log")),
            ..Default::default()
        };
        assert_eq!(s.commit(&b).unwrap().new_occurrences, vec![0, 1]);
        // The same content, renamed, read with a narrower rule and another time zone.
        let b = Batch {
            occurrences: vec![at("h:1", 3610, "renamed.log")],
            origin: Some(origin("k", 100, "t", "renamed.log")),
            ..Default::default()
        };
        assert!(s.commit(&b).unwrap().new_occurrences.is_empty(), "not news");
        let o = s.occurrences("R").unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].time, Some(Timestamp::from_second(3610).unwrap()));
        // Another input holding the same event: one occurrence. Re-reading it removes only
        // what it brought itself.
        let b = Batch {
            occurrences: vec![at("h:1", 3610, "b.log"), at("h:3", 30, "b.log")],
            origin: Some(origin("other", 50, "u", "b.log")),
            ..Default::default()
        };
        assert_eq!(s.commit(&b).unwrap().new_occurrences, vec![1]);
        s.commit(&Batch {
            origin: Some(origin("other", 50, "u", "b.log")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            ids(&s),
            ["h:1"],
            "the shared event came with the first input"
        );
        // The file at renamed.log grew (same head, larger): its re-read replaces what the
        // smaller version there contributed.
        let b = Batch {
            occurrences: vec![at("h:4", 40, "renamed.log")],
            origin: Some(origin("k", 200, "t2", "renamed.log")),
            ..Default::default()
        };
        assert_eq!(s.commit(&b).unwrap().new_occurrences, vec![0]);
        assert_eq!(ids(&s), ["h:4"]);
        // An input without replacement (a read that failed part-way) only adds.
        let mut o = origin("k", 200, "t2", "renamed.log");
        o.replace = None;
        s.commit(&Batch {
            origin: Some(o),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ids(&s), ["h:4"]);
    }

    #[test]
    fn a_batch_stored_in_parts_is_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        let mut s = SqliteStore::open(&p).unwrap();
        let hashed = |n: u128| NewOccurrence {
            identity: Identity::Hash(n << 100 | n),
            ..occ("h:0", n as i64)
        };
        s.commit(&Batch {
            occurrences: vec![hashed(1), hashed(2)],
            origin: Some(origin("k", 100, "t", "a.log")),
            ..Default::default()
        })
        .unwrap();
        // A re-read in parts: an event of an earlier part is not new again in a later one,
        // and what the earlier reading had that this one did not bring (2) goes at the end.
        s.begin(Some(&origin("k", 100, "t", "a.log"))).unwrap();
        assert_eq!(s.add(&[hashed(3), hashed(1)]).unwrap(), vec![0]);
        assert_eq!(s.add(&[hashed(3), hashed(4)]).unwrap(), vec![1]);
        // Other connections see nothing of an open batch.
        let other = SqliteStore::open_read_only(&p).unwrap();
        assert_eq!(other.occurrences("R").unwrap().len(), 2);
        s.finish(&Batch {
            origin: Some(origin("k", 100, "t", "a.log")),
            ..Default::default()
        })
        .unwrap();
        let ids: Vec<String> = other
            .occurrences("R")
            .unwrap()
            .into_iter()
            .map(|o| o.identity)
            .collect();
        let want: Vec<String> = [1, 3, 4]
            .iter()
            .map(|&n| hashed(n).identity.to_string())
            .collect();
        assert_eq!(ids, want);
        // An aborted batch leaves nothing behind, and the next one starts clean.
        s.begin(None).unwrap();
        assert_eq!(s.add(&[hashed(5)]).unwrap(), vec![0]);
        s.abort();
        assert_eq!(other.occurrences("R").unwrap().len(), 3);
        assert_eq!(
            s.commit(&Batch {
                occurrences: vec![hashed(5)],
                ..Default::default()
            })
            .unwrap()
            .new_occurrences,
            vec![0]
        );
    }

    #[test]
    fn statements_are_not_prepared_again_for_new_values() {
        let s = SqliteStore::in_memory().unwrap();
        for r in ["a", "b", "c"] {
            s.episodes(r).unwrap();
            s.occurrence_times(r).unwrap();
        }
        let st = s
            .conn
            .prepare_cached(
                "SELECT remediation, identity, start, first_seen, last_seen, count, reminders, merged_into, active, seq
                 FROM episodes WHERE remediation = ?1 ORDER BY start, identity",
            )
            .unwrap();
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn origins_are_made_for_occurrences_and_pruned_with_them() {
        let mut s = SqliteStore::in_memory().unwrap();
        let origins = |s: &SqliteStore| -> i64 {
            s.conn
                .query_row("SELECT COUNT(*) FROM origins", [], |r| r.get(0))
                .unwrap()
        };
        // An input without occurrences leaves no origin behind.
        s.commit(&Batch {
            origin: Some(origin("quiet", 10, "t", "quiet.log")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(origins(&s), 0);
        s.commit(&Batch {
            occurrences: vec![occ("h:1", 10)],
            origin: Some(origin("k", 100, "t", "a.log")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(origins(&s), 1);
        s.prune(Timestamp::from_second(100).unwrap()).unwrap();
        assert_eq!(origins(&s), 0, "its only occurrence was pruned");
    }

    #[test]
    fn identities_read_back_as_written() {
        for text in [
            "h:00ff3a9e4ab44f1cc6115a9fcede2c01",
            "h:1",
            "id:abc",
            "f:1:2:00ff@10",
        ] {
            let i = Identity::parse(text);
            assert_eq!(i.to_string(), text);
            assert_eq!(matches!(i, Identity::Hash(_)), text.len() == 34, "{text}");
        }
        // Upper-case hex is not the written form of a hash: kept as text, as written.
        let upper = "h:00FF3A9E4AB44F1CC6115A9FCEDE2C01";
        assert_eq!(Identity::parse(upper), Identity::Text(upper.into()));
    }

    #[test]
    fn a_bounded_re_read_replaces_only_its_time_range() {
        let mut s = SqliteStore::in_memory().unwrap();
        let b = Batch {
            occurrences: vec![occ("h:1", 10), occ("h:2", 5000)],
            origin: Some(origin("k", 100, "t", "a.log")),
            ..Default::default()
        };
        s.commit(&b).unwrap();
        let mut o = origin("k", 100, "t", "a.log");
        o.replace.as_mut().unwrap().since = Some(Timestamp::from_second(1000).unwrap());
        s.commit(&Batch {
            origin: Some(o),
            ..Default::default()
        })
        .unwrap();
        let ids: Vec<String> = s
            .occurrences("R")
            .unwrap()
            .into_iter()
            .map(|o| o.identity)
            .collect();
        assert_eq!(ids, ["h:1"]);
    }

    #[test]
    fn nothing_pruned_comes_back() {
        let mut s = SqliteStore::in_memory().unwrap();
        let b = Batch {
            occurrences: vec![occ("h:1", 10), occ("h:2", 5000)],
            coverage: vec![CoverageCell {
                remediation: "R".into(),
                bucket: 0,
                input: "k".into(),
                count: 1,
                max_time: Timestamp::from_second(10).unwrap(),
            }],
            inputs: vec![InputRecord {
                key: "k".into(),
                path: "a.log".into(),
                size: 100,
                tail: "t".into(),
                params: "p".into(),
            }],
            origin: Some(origin("k", 100, "t", "a.log")),
            ..Default::default()
        };
        s.commit(&b).unwrap();
        let st = s.prune(Timestamp::from_second(100).unwrap()).unwrap();
        assert_eq!((st.occurrences, st.coverage), (1, 1));
        let out = s.commit(&b).unwrap();
        assert!(out.new_occurrences.is_empty(), "{out:?}");
        assert_eq!(s.occurrences("R").unwrap().len(), 1);
        assert_eq!(s.coverage("R", None).unwrap().events, 0);
    }

    #[test]
    fn prune_keeps_an_episode_that_lasts_past_the_cutoff_whole() {
        use crate::track::Episode;
        let mut s = SqliteStore::in_memory().unwrap();
        s.commit(&Batch {
            occurrences: vec![occ("h:1", 10), occ("h:2", 50), occ("h:3", 500)],
            ..Default::default()
        })
        .unwrap();
        let t = |x| Timestamp::from_second(x).unwrap();
        let ep = |a, b| Episode {
            identity: t(a),
            start: t(a),
            first_seen: t(a),
            last_seen: t(b),
            count: 1,
            opened_count: 1,
            reminders: vec![],
        };
        s.record_episodes("R", &[ep(10, 10), ep(50, 500)], &[])
            .unwrap();
        let d = |a: i64, key: &str| {
            (
                IntentDraft {
                    remediation: "R".into(),
                    kind: IntentKind::Open,
                    key: key.into(),
                    episode_start: t(a),
                    count: 1,
                    due: t(a),
                },
                DeliveryStatus::Suppressed,
                vec![],
                vec![],
            )
        };
        s.add_intents(&[d(10, "old"), d(50, "spanning")], t(0))
            .unwrap();
        let st = s.prune(t(100)).unwrap();
        assert_eq!((st.occurrences, st.episodes, st.intents), (1, 1, 1));
        assert_eq!(
            s.occurrences("R").unwrap().len(),
            2,
            "h:2 opens a kept episode"
        );
        assert!(s.intent("spanning").unwrap().is_some());
        assert!(s.intent("old").unwrap().is_none());
        // The mark is the kept episode's first event: h:1 never comes back, h:2 stays.
        let out = s
            .commit(&Batch {
                occurrences: vec![occ("h:1", 10), occ("h:2", 50)],
                ..Default::default()
            })
            .unwrap();
        assert!(out.new_occurrences.is_empty());
        assert_eq!(s.occurrences("R").unwrap().len(), 2);
    }
}
