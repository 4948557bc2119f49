//! Tailing: following live files through rotation, truncation and restarts.
//!
//! File-system notifications only say *when* to look; what is true comes from `stat` and
//! `read`. Each followed file is known by its device, inode and a hash of its first bytes
//! (`head`), and the bytes just before the saved offset are hashed too (`tail`), so that:
//!
//! - a rename (logrotate `create`, Kubernetes' symlink flip) shows as a new inode at the path:
//!   the old file is drained through the descriptor recur still holds, then closed;
//! - a truncation shows as a size below the offset, or as different bytes before the offset
//!   (truncated and written again between two looks); for `copytruncate`, the copy next to the
//!   file (same first bytes, at least as long as the offset) is drained from the offset first;
//! - inode reuse after a restart shows as a different head;
//! - a file deleted while open is drained, then its descriptor released.
//!
//! A record is only handed out once its newline has been written: the read window of a live
//! file ends at its last newline, so a partial last line waits for the next look. A rotated
//! file's unterminated last line is handed out when the file is closed (nobody will finish it).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::store::Checkpoint;

use super::framing::{Framing, RecordReader};

/// Bytes hashed at the start of a file for its identity.
pub const HEAD_BYTES: u64 = 1024;
/// Bytes hashed just before the offset to tell a truncated-and-rewritten file.
pub const TAIL_BYTES: u64 = 256;
/// A rotated file that stopped growing is closed after this long at its end.
pub const ROTATED_GRACE: Duration = Duration::from_secs(5);

/// Where to start a file seen for the first time at startup without a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
}

/// Something the tailer noticed, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// A file is followed from `offset`.
    Opened {
        path: String,
        offset: u64,
        resumed: bool,
    },
    /// The file at `path` was renamed or deleted; the old one is drained before closing.
    Rotated { path: String },
    /// A rotated or deleted file was drained and closed.
    Closed { path: String, deleted: bool },
    /// The file shrank below the offset or was rewritten. `recovered_from` names the copy
    /// (copytruncate) drained from the old offset, or, with `copy_behind`, the copy that ends
    /// before the old offset (reading had gone past it: it holds nothing unread, and is not
    /// read); `lost` are bytes that could not be read.
    Truncated {
        path: String,
        offset: u64,
        recovered_from: Option<String>,
        copy_behind: bool,
        lost: u64,
    },
    /// Data that cannot be recovered. `bytes` is a lower bound: what recur had seen written
    /// past its offset (the size at the last look, kept in the checkpoint), not what was
    /// written after that.
    Lost {
        path: String,
        offset: u64,
        bytes: u64,
        reason: String,
    },
    /// A followed file now has another name that the patterns also match (logrotate renaming
    /// `app.log` to `app.log.1` under a directory or a glob): followed on under the new name,
    /// from where reading was, never read again from its start.
    Renamed { from: String, to: String },
    /// A file the patterns match that is not read: a compressed archive, or a copy of a
    /// followed file (copytruncate) whose lines are read from the original.
    Skipped { path: String, reason: &'static str },
    /// After a copytruncate, the writer (which does not append) went on writing at its old
    /// position: the truncated file starts with a hole of `hole` zero bytes, skipped. `lost`
    /// of them stand for bytes written between logrotate's copy and its truncation.
    Hole { path: String, hole: u64, lost: u64 },
}

/// One followed file (live, or rotated and draining).
#[derive(Debug)]
pub struct Tailed {
    /// The path it was followed under.
    pub path: PathBuf,
    /// Its checkpoint key: the path, or a rotated key (see [`rotated_key`]).
    pub key: String,
    file: File,
    pub dev: u64,
    pub ino: u64,
    head_hash: String,
    head_len: u64,
    /// Offset of the first byte not yet searched.
    pub offset: u64,
    /// Line number of the next record.
    pub line: u64,
    /// Coverage key of this reading session (a path, identity and starting offset), so that
    /// counts from one session accumulate and a re-read from an earlier offset never hides
    /// behind an existing count.
    pub session: String,
    /// In-scope counts of this session: (rule id, hour bucket) → (count, newest time).
    pub coverage: HashMap<(String, i64), (u64, jiff::Timestamp)>,
    pub framing: Framing,
    /// Rotated away (or deleted): drained, then closed.
    pub rotated: bool,
    /// Size seen at the last read.
    pub last_size: u64,
    /// Largest size ever seen (any look): what a truncation may have taken away.
    pub max_seen: u64,
    /// Freshly restarted after a copytruncate: before reading, skip a leading hole (a writer
    /// that does not append keeps writing at its old position). `covered` is how much of the
    /// old content is accounted for (read, in the copy, or already reported lost).
    hole_check: Option<u64>,
    /// Events noticed while reading (a skipped hole), handed to the next look.
    pending: Vec<TailEvent>,
    /// Whether the first bytes were checked for a compression magic number.
    sniffed: bool,
    /// The file turned out to be a compressed archive: dropped at the next look.
    pub compressed: bool,
    /// When a rotated file was last seen at its end without growing.
    idle_since: Option<Instant>,
    /// Hash of the bytes before `offset` when it was reached.
    saved_tail: Option<String>,
    /// The first bytes before `offset` (up to [`HEAD_BYTES`]) as they were when read: what
    /// a copy of this file starts with, even once the file itself was truncated.
    read_head: Vec<u8>,
    /// The bytes before the offset changed while a read was under way (truncated, or
    /// rewritten, between the look and the read): the read was dropped, and the next look
    /// handles the file as truncated.
    changed: bool,
    /// Key and offset of the last checkpoint handed out for commit.
    pub committed: Option<(String, u64)>,
}

/// A rotated file's checkpoint key: the path it was followed under plus its identity.
pub fn rotated_key(path: &str, dev: u64, ino: u64) -> String {
    format!("{path} [rotated {dev}:{ino}]")
}

/// Splits a rotated key into the original path, device and inode.
pub fn parse_rotated_key(key: &str) -> Option<(&str, u64, u64)> {
    let rest = key.strip_suffix(']')?;
    let i = rest.rfind(" [rotated ")?;
    let (dev, ino) = rest[i + 10..].split_once(':')?;
    Some((&rest[..i], dev.parse().ok()?, ino.parse().ok()?))
}

fn hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// Reads `len` bytes at `at` (fewer at end of file).
fn read_at(file: &File, at: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn head_of(file: &File, len: u64) -> io::Result<(String, u64)> {
    let b = read_at(file, 0, len.min(HEAD_BYTES))?;
    Ok((hash(&b), b.len() as u64))
}

fn tail_hash(file: &File, offset: u64) -> io::Result<String> {
    let from = offset.saturating_sub(TAIL_BYTES);
    let b = read_at(file, from, offset - from)?;
    if (b.len() as u64) < offset - from {
        return Ok(String::new());
    }
    Ok(hash(&b))
}

/// Offset just past the last newline in `[from, to)`, or `from` when there is none. Reads
/// backwards in blocks, so the cost is bounded by the unterminated tail.
pub fn last_newline_end(file: &File, from: u64, to: u64) -> io::Result<u64> {
    const STEP: u64 = 64 * 1024;
    let mut hi = to;
    while hi > from {
        let lo = hi.saturating_sub(STEP).max(from);
        let b = read_at(file, lo, hi - lo)?;
        if let Some(i) = memchr::memrchr(b'\n', &b) {
            return Ok(lo + i as u64 + 1);
        }
        if (b.len() as u64) < hi - lo {
            // The file shrank under us; the next look sorts it out.
            return Ok(from);
        }
        hi = lo;
    }
    Ok(from)
}

/// Bytes looked at for a compression magic number.
const MAGIC_BYTES: u64 = 6;

/// Whether `head` starts like a compressed archive (gzip, zstd, bzip2, xz, lz4, zip).
pub fn is_compressed(head: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        &[0x1f, 0x8b],
        &[0x28, 0xb5, 0x2f, 0xfd],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        &[0x04, 0x22, 0x4d, 0x18],
        b"PK\x03\x04",
    ];
    MAGICS.iter().any(|m| head.starts_with(m))
}

/// Whether a file name says it is a compressed archive (logrotate `compress` writes
/// `app.log.1.gz` progressively, so the name is known before its first bytes are).
pub fn compressed_name(path: &Path) -> bool {
    const EXT: &[&str] = &["gz", "tgz", "bz2", "xz", "zst", "lz4", "zip", "Z", "lzma"];
    path.extension()
        .is_some_and(|e| EXT.contains(&&*e.to_string_lossy()))
}

/// The first non-zero byte in `[from, to)`, or `None` when there are only zeros. A hole left
/// by a truncation under a writer that does not append reads as zeros; reading it is cheap
/// (nothing is on disk) and bounded by the file size.
fn first_data(file: &File, from: u64, to: u64) -> io::Result<Option<u64>> {
    const STEP: u64 = 256 * 1024;
    let mut at = from;
    while at < to {
        let b = read_at(file, at, STEP.min(to - at))?;
        if b.is_empty() {
            return Ok(None);
        }
        if let Some(i) = b.iter().position(|&c| c != 0) {
            return Ok(Some(at + i as u64));
        }
        at += b.len() as u64;
    }
    Ok(None)
}

impl Tailed {
    fn open(
        path: &Path,
        key: String,
        file: File,
        offset: u64,
        line: u64,
        forced: Option<Framing>,
    ) -> io::Result<Tailed> {
        let m = file.metadata()?;
        let (head_hash, head_len) = head_of(&file, m.len())?;
        let framing = forced.unwrap_or_else(|| {
            let head = read_at(&file, 0, 4096).unwrap_or_default();
            match Framing::sniff(&head) {
                // A growing JSON array cannot be tailed record by record; read it as lines.
                Framing::JsonArray => Framing::Lines,
                f => f,
            }
        });
        let saved_tail = tail_hash(&file, offset).ok();
        let read_head = read_at(&file, 0, offset.min(HEAD_BYTES))?;
        Ok(Tailed {
            session: format!(
                "tail:{}:{}:{}@{offset}:{}",
                path.display(),
                m.dev(),
                m.ino(),
                jiff::Timestamp::now().as_nanosecond()
            ),
            path: path.to_path_buf(),
            key,
            file,
            dev: m.dev(),
            ino: m.ino(),
            head_hash,
            head_len,
            offset,
            line,
            coverage: HashMap::new(),
            framing,
            rotated: false,
            last_size: m.len(),
            max_seen: m.len(),
            hole_check: None,
            pending: Vec::new(),
            sniffed: offset > 0,
            compressed: false,
            idle_since: None,
            saved_tail,
            read_head,
            changed: false,
            committed: None,
        })
    }

    /// Whether this file's identity matches a checkpoint: device, inode, head and the bytes
    /// before the offset.
    fn matches(&self, cp: &Checkpoint) -> bool {
        self.dev == cp.dev && self.ino == cp.inode && self.same_content(cp)
    }

    /// Whether the content is the checkpointed one (head and tail), whatever the inode.
    fn same_content(&self, cp: &Checkpoint) -> bool {
        let Ok(size) = self.file.metadata().map(|m| m.len()) else {
            return false;
        };
        size >= cp.offset
            && size >= cp.head_len
            && read_at(&self.file, 0, cp.head_len).is_ok_and(|b| hash(&b) == cp.head_hash)
            && tail_hash(&self.file, cp.offset).is_ok_and(|h| h == cp.tail_hash)
    }

    /// The checkpoint to commit with what was read so far.
    pub fn checkpoint(&mut self) -> io::Result<Checkpoint> {
        if self.head_len < HEAD_BYTES && self.offset > self.head_len {
            // The head grows with the file until it is HEAD_BYTES long.
            let (h, l) = head_of(&self.file, self.offset)?;
            self.head_hash = h;
            self.head_len = l;
        }
        Ok(Checkpoint {
            path: self.key.clone(),
            dev: self.dev,
            inode: self.ino,
            head_hash: self.head_hash.clone(),
            head_len: self.head_len,
            offset: self.offset,
            line: self.line,
            tail_hash: tail_hash(&self.file, self.offset)?,
            size: self.max_seen.max(self.offset),
        })
    }

    /// A record reader over what is ready: from the offset to the last newline, or to the
    /// very end for a rotated file that nobody writes any more (its unterminated last line is
    /// final), at most about `budget` bytes. `None` when there is nothing to read.
    pub fn reader(
        &mut self,
        max_record: usize,
        budget: u64,
        now: Instant,
    ) -> io::Result<Option<RecordReader<io::Take<&File>>>> {
        let meta = self.file.metadata()?;
        let size = meta.len();
        self.last_size = size;
        self.max_seen = self.max_seen.max(size);
        if !self.sniffed && size >= MAGIC_BYTES {
            self.sniffed = true;
            if self.offset == 0 && is_compressed(&read_at(&self.file, 0, MAGIC_BYTES)?) {
                self.compressed = true;
            }
        }
        if self.compressed {
            return Ok(None);
        }
        if let Some(covered) = self.hole_check {
            if size <= self.offset {
                return Ok(None);
            }
            match first_data(&self.file, self.offset, size)? {
                // Only zeros so far: the writer's line may be on its way.
                None => return Ok(None),
                Some(at) => {
                    self.hole_check = None;
                    if at > self.offset {
                        let hole = at - self.offset;
                        self.pending.push(TailEvent::Hole {
                            path: self.path.display().to_string(),
                            hole,
                            lost: at.saturating_sub(covered),
                        });
                        self.offset = at;
                        self.saved_tail = tail_hash(&self.file, at).ok();
                    }
                }
            }
        }
        let final_read = self.rotated
            && (meta.nlink() == 0
                || self
                    .idle_since
                    .is_some_and(|s| now.duration_since(s) >= ROTATED_GRACE));
        let mut limit = if size <= self.offset {
            self.offset
        } else if final_read {
            size
        } else {
            last_newline_end(&self.file, self.offset, size)?
        };
        if limit - self.offset > budget {
            // Stop at a newline inside the budget when there is one; an over-long line is
            // skipped by the reader without buffering, so reading it whole is safe for memory.
            let cut = last_newline_end(&self.file, self.offset, self.offset + budget)?;
            if cut > self.offset {
                limit = cut;
            }
        }
        if limit <= self.offset {
            if self.rotated {
                self.idle_since.get_or_insert(now);
            }
            return Ok(None);
        }
        self.idle_since = None;
        let mut f = &self.file;
        io::Seek::seek(&mut f, io::SeekFrom::Start(self.offset))?;
        let src = (&self.file).take(limit - self.offset);
        Ok(Some(RecordReader::resume(
            src,
            self.framing,
            max_record,
            self.offset,
            self.line,
        )))
    }

    /// Whether the bytes just before the offset are no longer the ones read up to it.
    fn tail_changed(&self) -> bool {
        self.offset > 0
            && self.saved_tail.is_some()
            && tail_hash(&self.file, self.offset).ok() != self.saved_tail
    }

    /// Records that everything before `offset` was searched, unless the file changed under
    /// the read: when the bytes before the old offset are no longer the ones read up to it
    /// (a truncation, copytruncate's included, landed between the last look and the end of
    /// the read), what was just read may be the new content at old positions, or the zeros
    /// a writer that does not append leaves. Then nothing advances, `false` is returned (the
    /// caller drops what it found), and the next look handles the truncation from the old
    /// offset: the copy is drained from there, the new content read from its start.
    #[must_use]
    pub fn advance(&mut self, offset: u64, line: u64) -> bool {
        if !self.rotated && self.tail_changed() {
            self.changed = true;
            return false;
        }
        self.offset = offset;
        self.line = line;
        self.saved_tail = tail_hash(&self.file, offset).ok();
        let want = offset.min(HEAD_BYTES);
        let have = self.read_head.len() as u64;
        if have < want
            && let Ok(b) = read_at(&self.file, have, want - have)
        {
            self.read_head.extend_from_slice(&b);
        }
        true
    }

    /// The file's first bytes (up to [`HEAD_BYTES`]), for record identities.
    pub fn head_bytes(&self) -> Vec<u8> {
        read_at(&self.file, 0, HEAD_BYTES).unwrap_or_default()
    }

    /// Events noticed while reading, for the log.
    pub fn take_events(&mut self) -> Vec<TailEvent> {
        std::mem::take(&mut self.pending)
    }

    /// Size of the file now.
    pub fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

/// Follows the files that `patterns` (paths, directories, globs) name.
pub struct Tailer {
    patterns: Vec<String>,
    start: StartAt,
    framing: Option<Framing>,
    /// Live files by path.
    pub live: HashMap<PathBuf, Tailed>,
    /// Rotated files being drained.
    pub rotated: Vec<Tailed>,
    /// Checkpoint keys to delete with the next commit.
    pub forget: Vec<String>,
    /// Checkpoints loaded at startup, consumed on the first look.
    startup: Option<HashMap<String, Checkpoint>>,
    /// Paths never followed (the state database and its journal files).
    exclude: Vec<PathBuf>,
    /// Identities of matching files that are not read (compressed archives, copies, second
    /// names), under whatever name they show up later (a copy renamed by the next rotation).
    /// Only identities still found under a matching path are kept.
    ignored: BTreeSet<(u64, u64)>,
    /// Files drained and closed, by identity, with where reading ended: a file that shows up
    /// again under a matching name is followed on from there, never re-read. Only identities
    /// still found under a matching path are kept.
    finished: HashMap<(u64, u64), Checkpoint>,
    /// The first bytes, as read, of the contents that truncations took away from live files
    /// (newest last, a few per path): a copy of such a content that is first seen after the
    /// truncation was handled is known by them (see [`Tailer::copy_of`]).
    earlier: Vec<(PathBuf, Vec<u8>)>,
}

/// Earlier contents remembered per live path (see `Tailer::earlier`).
const EARLIER_PER_PATH: usize = 4;

impl Tailer {
    pub fn new(
        patterns: Vec<String>,
        start: StartAt,
        framing: Option<Framing>,
        checkpoints: Vec<Checkpoint>,
    ) -> Tailer {
        Tailer {
            patterns,
            start,
            framing,
            live: HashMap::new(),
            rotated: Vec::new(),
            forget: Vec::new(),
            startup: Some(
                checkpoints
                    .into_iter()
                    .map(|c| (c.path.clone(), c))
                    .collect(),
            ),
            exclude: Vec::new(),
            ignored: BTreeSet::new(),
            finished: HashMap::new(),
            earlier: Vec::new(),
        }
    }

    /// Never follows files whose absolute path starts with `prefix` (e.g. the state database,
    /// which may sit inside a followed directory, with its `-wal` and `-shm` files).
    pub fn exclude(&mut self, prefix: PathBuf) {
        self.exclude.push(prefix);
    }

    /// Directories worth watching for notifications: each pattern's directory (the part
    /// before any glob character), and directories named as patterns.
    pub fn watch_dirs(&self) -> Vec<(PathBuf, bool)> {
        let mut out = BTreeSet::new();
        for p in &self.patterns {
            let path = Path::new(p);
            if path.is_dir() {
                out.insert((path.to_path_buf(), true));
                continue;
            }
            let mut dir = PathBuf::new();
            for c in path.components() {
                if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
                    break;
                }
                dir.push(c);
            }
            let recursive = p.contains("**");
            let dir = if dir == path {
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                dir
            };
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            out.insert((dir.clone(), recursive));
            // A symlinked file (Kubernetes) rotates in its target's directory.
            if let Ok(real) = std::fs::canonicalize(path)
                && let Some(parent) = real.parent()
            {
                let here = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
                if parent != here {
                    out.insert((parent.to_path_buf(), false));
                }
            }
        }
        out.into_iter().collect()
    }

    /// The files the patterns name now.
    fn discover(&self) -> Vec<PathBuf> {
        let (inputs, _missing) = super::expand(&self.patterns);
        inputs
            .into_iter()
            .filter_map(|i| match i {
                super::Input::File(p) => Some(p),
                super::Input::Stdin => None,
            })
            .filter(|p| {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                let abs = abs.to_string_lossy();
                !self
                    .exclude
                    .iter()
                    .any(|x| abs.starts_with(&*x.to_string_lossy()))
            })
            .collect()
    }

    /// Looks at every path: new files, rotations, truncations, deletions. The truth is `stat`.
    pub fn reconcile(&mut self) -> Vec<TailEvent> {
        let mut events = Vec::new();
        for t in self.files_mut() {
            events.append(&mut t.take_events());
        }
        // Files that turned out to be compressed archives at their first read.
        let compressed: Vec<PathBuf> = self
            .live
            .iter()
            .filter(|(_, t)| t.compressed)
            .map(|(p, _)| p.clone())
            .collect();
        for p in compressed {
            let t = self.live.remove(&p).unwrap();
            self.forget.push(t.key.clone());
            self.ignored.insert((t.dev, t.ino));
            events.push(TailEvent::Skipped {
                path: p.display().to_string(),
                reason: "a compressed archive",
            });
        }
        let first = self.startup.is_some();
        let mut startup = self.startup.take().unwrap_or_default();
        let paths = self.discover();
        let present: BTreeSet<&PathBuf> = paths.iter().collect();

        // Followed files that vanished: drain what is left through the open descriptor.
        let gone: Vec<PathBuf> = self
            .live
            .keys()
            .filter(|p| !present.contains(p) && std::fs::metadata(p).is_err())
            .cloned()
            .collect();
        for p in gone {
            let t = self.live.remove(&p).unwrap();
            events.push(TailEvent::Rotated {
                path: p.display().to_string(),
            });
            self.retire(t);
        }

        // At startup, a checkpoint follows its file by identity first, whatever it is called
        // now: a file renamed while recur was down, to a name the patterns also match, resumes
        // under that name. The path it was checkpointed under then holds a newer file, read
        // from its start.
        let mut moved: BTreeSet<String> = BTreeSet::new();
        if first {
            for path in &paths {
                let Ok(meta) = std::fs::metadata(path) else {
                    continue;
                };
                let id = (meta.dev(), meta.ino());
                let Some(key) = startup
                    .iter()
                    .find(|(_, cp)| (cp.dev, cp.inode) == id)
                    .map(|(k, _)| k.clone())
                else {
                    continue;
                };
                let Ok(file) = File::open(path) else { continue };
                let cp = &startup[&key];
                let here = path.display().to_string();
                let Ok(mut t) =
                    Tailed::open(path, here.clone(), file, cp.offset, cp.line, self.framing)
                else {
                    continue;
                };
                if !t.matches(cp) {
                    continue;
                }
                let cp = startup.remove(&key).unwrap();
                t.saved_tail = Some(cp.tail_hash.clone());
                t.max_seen = t.max_seen.max(cp.size);
                if cp.path != here {
                    self.forget.push(cp.path.clone());
                    let orig = parse_rotated_key(&cp.path).map_or(cp.path.as_str(), |k| k.0);
                    moved.insert(orig.to_string());
                    events.push(TailEvent::Renamed {
                        from: orig.to_string(),
                        to: here.clone(),
                    });
                }
                events.push(TailEvent::Opened {
                    path: here,
                    offset: cp.offset,
                    resumed: true,
                });
                self.live.insert(path.clone(), t);
            }
        }

        // Identities of the files there now: what `finished` and `ignored` may keep.
        let mut ids: BTreeSet<(u64, u64)> = BTreeSet::new();
        for path in &paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let id = (meta.dev(), meta.ino());
            ids.insert(id);
            if let Some(t) = self.live.get_mut(path) {
                if (t.dev, t.ino) == id {
                    let size = meta.len();
                    // Truncated and written again past the offset between two looks: the
                    // bytes before the offset are not the ones read.
                    let rewritten = size >= t.offset && size != t.last_size && t.tail_changed();
                    if size < t.offset || rewritten || t.changed {
                        let ev = self.truncated(path, size);
                        events.push(ev);
                    } else {
                        t.max_seen = t.max_seen.max(size);
                    }
                    continue;
                }
                // Renamed away (or deleted) and replaced: the old file is drained, the one
                // now at the path is new (read from its start).
                let old = self.live.remove(path).unwrap();
                events.push(TailEvent::Rotated {
                    path: path.display().to_string(),
                });
                self.retire(old);
            }
            // A path seen for the first time: a followed file under a new name first.
            if let Some(ev) = self.adopt(path, id) {
                events.push(ev);
                continue;
            }
            if let Some(ev) = self.reopen_finished(path, id) {
                events.push(ev);
                continue;
            }
            if self.ignored.contains(&id) {
                continue;
            }
            if compressed_name(path) {
                self.ignored.insert(id);
                events.push(TailEvent::Skipped {
                    path: path.display().to_string(),
                    reason: "a compressed archive (by its name)",
                });
                continue;
            }
            let key = path.display().to_string();
            if let Some(cp) = startup.remove(&key) {
                self.resume_from(path, cp, &mut events);
                continue;
            }
            if !first {
                if meta.len() == 0 {
                    // Nothing to read yet, and nothing to tell it by: a copy being made and
                    // a new log look the same until their first bytes arrive.
                    continue;
                }
                if let Some(of) = self.copy_of(path) {
                    self.ignored.insert(id);
                    events.push(TailEvent::Skipped {
                        path: format!("{key} (a copy of {})", of.display()),
                        reason: "a copy of a followed file (its lines are read from the original)",
                    });
                    continue;
                }
            }
            let from_end = first && self.start == StartAt::End && !moved.contains(&key);
            self.open_new(path, 0, 1, from_end, &mut events);
        }
        self.finished.retain(|id, _| ids.contains(id));
        self.ignored.retain(|id| ids.contains(id));
        let live = &self.live;
        self.earlier.retain(|(p, _)| live.contains_key(p));

        // Startup checkpoints left: rotated files recur was draining, or files gone.
        for (key, cp) in startup {
            let orig = parse_rotated_key(&key).map_or(key.clone(), |k| k.0.to_string());
            self.forget.push(key.clone());
            if self.follows((cp.dev, cp.inode)) {
                continue;
            }
            match self.find_copy(Path::new(&orig), &cp, true) {
                Some(t) => {
                    events.push(TailEvent::Opened {
                        path: t.path.display().to_string(),
                        offset: t.offset,
                        resumed: true,
                    });
                    self.rotated.push(t);
                }
                None => events.push(TailEvent::Lost {
                    path: orig,
                    offset: cp.offset,
                    bytes: cp.size.saturating_sub(cp.offset),
                    reason: "the file recur was following is gone (rotated away and deleted while recur was not running)".into(),
                }),
            }
        }
        events
    }

    /// Whether a file with this device and inode is followed (live or draining).
    fn follows(&self, id: (u64, u64)) -> bool {
        self.live
            .values()
            .chain(self.rotated.iter())
            .any(|t| (t.dev, t.ino) == id)
    }

    /// Follows on under `path` a file already followed under another name (a rename that the
    /// patterns match on both sides), from where reading was. `None` when no followed file
    /// has this identity.
    fn adopt(&mut self, path: &Path, id: (u64, u64)) -> Option<TailEvent> {
        let key = path.display().to_string();
        let other = self
            .live
            .iter()
            .find(|(p, t)| p.as_path() != path && (t.dev, t.ino) == id)
            .map(|(p, _)| p.clone());
        let mut t = if let Some(other) = other {
            // A second name of the same file (a hard link) is not a rename.
            if std::fs::metadata(&other).is_ok_and(|m| (m.dev(), m.ino()) == id) {
                self.ignored.insert(id);
                return None;
            }
            self.live.remove(&other).unwrap()
        } else {
            let i = self.rotated.iter().position(|t| (t.dev, t.ino) == id)?;
            self.rotated.remove(i)
        };
        let from = t.path.display().to_string();
        self.forget.push(t.key.clone());
        t.path = path.to_path_buf();
        t.key = key.clone();
        t.rotated = false;
        t.idle_since = None;
        t.committed = None;
        self.live.insert(path.to_path_buf(), t);
        Some(TailEvent::Renamed { from, to: key })
    }

    /// Follows again, from where it was closed, a file that was drained and closed and now
    /// shows up under a name the patterns match (a copy drained after a copytruncate, then
    /// renamed to the next rotation number).
    fn reopen_finished(&mut self, path: &Path, id: (u64, u64)) -> Option<TailEvent> {
        let cp = self.finished.get(&id)?.clone();
        let file = File::open(path).ok()?;
        let key = path.display().to_string();
        let mut t = Tailed::open(path, key.clone(), file, cp.offset, cp.line, self.framing).ok()?;
        if !t.matches(&cp) {
            self.finished.remove(&id);
            return None;
        }
        self.finished.remove(&id);
        t.saved_tail = Some(cp.tail_hash.clone());
        self.live.insert(path.to_path_buf(), t);
        Some(TailEvent::Renamed {
            from: cp.path.clone(),
            to: key,
        })
    }

    /// The live file that `path` is a copy of: a name that starts with the live file's name
    /// (`app.log.1`, `app.log-20250101` next to `app.log`) and the same first bytes.
    ///
    /// The first bytes are compared with the live file as it is now, and with what it held
    /// when it was read: logrotate's `copytruncate` copies, then truncates, and recur may look
    /// at the copy after the truncation (in the same look, between the two paths, or later),
    /// when the original starts with new lines. A copy is recognised by the contents read
    /// before the truncation (the file's own record of its first bytes, and the contents that
    /// earlier truncations took away), never read from its start: what it holds up to where
    /// reading stopped was read, and the truncation was handled when it was seen (the copy
    /// drained from the old offset when it held more, or what was past it reported lost).
    fn copy_of(&self, path: &Path) -> Option<PathBuf> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let file = File::open(path).ok()?;
        let size = file.metadata().ok()?.len();
        // Another name next to it that extends its name (a new file at the path itself is not
        // a copy of what the path held before).
        let same_place = |p: &Path| {
            p != path
                && p.parent() == path.parent()
                && p.file_name()
                    .is_some_and(|n| name.starts_with(&*n.to_string_lossy()))
        };
        // `known` is the original's first bytes: the copy must hold as many of them as it
        // can (up to its own size) and have exactly those.
        let starts_with = |known: &[u8]| {
            let n = size.min(HEAD_BYTES).min(known.len() as u64);
            n > 0 && read_at(&file, 0, n).is_ok_and(|a| a == known[..n as usize])
        };
        for (p, t) in &self.live {
            if !same_place(p) {
                continue;
            }
            let n = size.min(HEAD_BYTES).min(t.max_seen);
            let now = read_at(&t.file, 0, n).unwrap_or_default();
            if now.len() as u64 == n && starts_with(&now) || starts_with(&t.read_head) {
                return Some(p.clone());
            }
        }
        self.earlier
            .iter()
            .rev()
            .find(|(p, head)| same_place(p) && starts_with(head))
            .map(|(p, _)| p.clone())
    }

    /// Resumes a path from its startup checkpoint, or works out what happened while down.
    fn resume_from(&mut self, path: &Path, cp: Checkpoint, events: &mut Vec<TailEvent>) {
        let Ok(file) = File::open(path) else { return };
        let key = path.display().to_string();
        let Ok(mut t) = Tailed::open(path, key.clone(), file, cp.offset, cp.line, self.framing)
        else {
            return;
        };
        if t.matches(&cp) {
            t.saved_tail = Some(cp.tail_hash.clone());
            t.max_seen = t.max_seen.max(cp.size);
            events.push(TailEvent::Opened {
                path: key.clone(),
                offset: cp.offset,
                resumed: true,
            });
            self.live.insert(path.to_path_buf(), t);
            return;
        }
        // Not the checkpointed file: it was rotated (find it and drain it from the offset),
        // truncated, or replaced while recur was down.
        match self.find_copy(path, &cp, true) {
            Some(old) => {
                events.push(TailEvent::Opened {
                    path: old.path.display().to_string(),
                    offset: old.offset,
                    resumed: true,
                });
                self.rotated.push(old);
            }
            None => events.push(TailEvent::Lost {
                path: key.clone(),
                offset: cp.offset,
                bytes: cp.size.saturating_sub(cp.offset),
                reason: "the file changed while recur was not running (truncated, or rotated and the old file removed or compressed)".into(),
            }),
        }
        self.open_new(path, 0, 1, false, events);
    }

    /// Regular files next to `path` (same directory, or the symlink target's directory) whose
    /// name starts with the file's name, in name order: where rotation puts its copies and
    /// renamed files.
    fn neighbours(path: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Vec::new();
        };
        let mut dirs = vec![path.parent().map(Path::to_path_buf).unwrap_or_default()];
        if let Ok(real) = std::fs::canonicalize(path)
            && let Some(p) = real.parent()
        {
            dirs.push(p.to_path_buf());
        }
        let real_name = std::fs::canonicalize(path)
            .ok()
            .and_then(|r| r.file_name().map(|n| n.to_string_lossy().into_owned()));
        let mut out = Vec::new();
        for dir in dirs {
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut cands: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with(&name)
                            || real_name
                                .as_ref()
                                .is_some_and(|r| n.starts_with(r.as_str()))
                    })
                })
                .collect();
            cands.sort();
            for c in cands {
                match std::fs::metadata(&c) {
                    Ok(m) if m.is_file() => out.push((c, m)),
                    _ => {}
                }
            }
        }
        out
    }

    /// Finds the file a checkpoint belongs to next to `path` (see [`Tailer::neighbours`]):
    /// same inode, or (a copy) same first bytes and the same bytes before the offset. Returns
    /// it positioned at the offset.
    fn find_copy(&self, path: &Path, cp: &Checkpoint, same_inode_ok: bool) -> Option<Tailed> {
        for (c, m) in Self::neighbours(path) {
            let same_inode = (m.dev(), m.ino()) == (cp.dev, cp.inode);
            if same_inode && !same_inode_ok || self.follows((m.dev(), m.ino())) {
                continue;
            }
            let Ok(file) = File::open(&c) else { continue };
            let base = parse_rotated_key(&cp.path).map_or(cp.path.as_str(), |k| k.0);
            let key = rotated_key(base, m.dev(), m.ino());
            let Ok(mut t) = Tailed::open(&c, key, file, cp.offset, cp.line, self.framing) else {
                continue;
            };
            if t.same_content(cp) {
                t.rotated = true;
                return Some(t);
            }
        }
        None
    }

    /// The copytruncate copy of a truncated file that ends before where reading was (recur
    /// read lines written between logrotate's copy and its truncation): a file next to it,
    /// not followed, shorter than `offset`, that starts with the bytes read (`head`). It
    /// holds nothing unread. The largest such file (the newest copy of a growing file) when
    /// several match.
    fn copy_behind(
        &self,
        path: &Path,
        id: (u64, u64),
        head: &[u8],
        offset: u64,
    ) -> Option<PathBuf> {
        Self::neighbours(path)
            .into_iter()
            .filter(|(_, m)| {
                let cid = (m.dev(), m.ino());
                cid != id && !self.follows(cid) && m.len() > 0 && m.len() < offset
            })
            .filter(|(c, m)| {
                let n = m.len().min(HEAD_BYTES).min(head.len() as u64);
                n > 0
                    && File::open(c)
                        .and_then(|f| read_at(&f, 0, n))
                        .is_ok_and(|a| a == head[..n as usize])
            })
            .max_by_key(|(_, m)| m.len())
            .map(|(c, _)| c)
    }

    /// Handles a truncation of the live file at `path` (now `size` bytes).
    ///
    /// What was lost is counted as well as it can be known, a lower bound: the bytes recur
    /// saw written (its largest stat of the file) that are neither read nor in the copy, and,
    /// for a writer that does not append, the hole it leaves at the head of the truncated file
    /// (its next write lands at its old position; the hole's length is exactly the size the
    /// file had when it was truncated). Bytes an appending writer wrote between logrotate's
    /// copy and its truncation, before recur looked, leave no trace anywhere.
    fn truncated(&mut self, path: &Path, size: u64) -> TailEvent {
        let t = self.live.get_mut(path).unwrap();
        t.changed = false;
        let old_offset = t.offset;
        let id = (t.dev, t.ino);
        let cp = Checkpoint {
            path: t.key.clone(),
            dev: t.dev,
            inode: t.ino,
            head_hash: t.head_hash.clone(),
            head_len: t.head_len,
            offset: t.offset,
            line: t.line,
            tail_hash: t.saved_tail.clone().unwrap_or_default(),
            size: t.max_seen,
        };
        let seen = t.max_seen.max(old_offset);
        let head = t.read_head.clone();
        if !head.is_empty() {
            let mine = self.earlier.iter().filter(|(p, _)| p == path).count();
            if mine >= EARLIER_PER_PATH {
                let i = self.earlier.iter().position(|(p, _)| p == path).unwrap();
                self.earlier.remove(i);
            }
            self.earlier.push((path.to_path_buf(), head.clone()));
        }
        // copytruncate: the copy holds our bytes up to the moment it was taken.
        let copy = self.find_copy(path, &cp, false);
        let covered = copy
            .as_ref()
            .map_or(old_offset, |c| c.last_size.max(old_offset));
        let lost = seen.saturating_sub(covered);
        // Or a copy that recur had read past: known as a copy, never read.
        let behind = match copy {
            Some(_) => None,
            None => self.copy_behind(path, id, &head, old_offset),
        };
        if let Some(c) = &behind
            && let Ok(m) = std::fs::metadata(c)
        {
            self.ignored.insert((m.dev(), m.ino()));
        }
        // Start over on the same file.
        if let Ok(file) = File::open(path) {
            let key = path.display().to_string();
            if let Ok(mut fresh) = Tailed::open(path, key, file, 0, 1, self.framing) {
                fresh.last_size = size;
                fresh.hole_check = Some(covered.max(seen));
                *self.live.get_mut(path).unwrap() = fresh;
            }
        }
        match copy {
            Some(copy) => {
                let from = copy.path.display().to_string();
                self.rotated.push(copy);
                TailEvent::Truncated {
                    path: path.display().to_string(),
                    offset: old_offset,
                    recovered_from: Some(from),
                    copy_behind: false,
                    lost,
                }
            }
            None => TailEvent::Truncated {
                path: path.display().to_string(),
                offset: old_offset,
                copy_behind: behind.is_some(),
                recovered_from: behind.map(|c| c.display().to_string()),
                lost,
            },
        }
    }

    fn open_new(
        &mut self,
        path: &Path,
        offset: u64,
        line: u64,
        from_end: bool,
        events: &mut Vec<TailEvent>,
    ) {
        let Ok(file) = File::open(path) else { return };
        let (offset, line) = if from_end {
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            // Lines before the end are not read; numbering still counts them would cost a
            // full read, so lines are numbered from where reading starts.
            (last_newline_end(&file, 0, size).unwrap_or(0), 1)
        } else {
            (offset, line)
        };
        let key = path.display().to_string();
        if let Ok(t) = Tailed::open(path, key.clone(), file, offset, line, self.framing) {
            events.push(TailEvent::Opened {
                path: key,
                offset,
                resumed: false,
            });
            self.live.insert(path.to_path_buf(), t);
        }
    }

    /// Moves a live file to the rotated list under its rotated key.
    fn retire(&mut self, mut t: Tailed) {
        self.forget.push(t.key.clone());
        t.key = rotated_key(&t.key, t.dev, t.ino);
        t.rotated = true;
        self.rotated.push(t);
    }

    /// Closes rotated files that are drained: deleted ones at once, others after a quiet
    /// spell (a writer may still append to the old file until it reopens its log).
    pub fn close_drained(&mut self, now: Instant) -> Vec<(Tailed, bool)> {
        let mut closed = Vec::new();
        let mut i = 0;
        while i < self.rotated.len() {
            let t = &mut self.rotated[i];
            let meta = t.file.metadata();
            let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let deleted = meta.as_ref().map(|m| m.nlink() == 0).unwrap_or(true);
            let quiet = t
                .idle_since
                .is_some_and(|s| now.duration_since(s) >= ROTATED_GRACE);
            if t.offset >= size && (deleted || quiet) {
                let mut t = self.rotated.remove(i);
                self.forget.push(t.key.clone());
                if !deleted && let Ok(cp) = t.checkpoint() {
                    self.finished.insert((t.dev, t.ino), cp);
                }
                closed.push((t, deleted));
            } else {
                i += 1;
            }
        }
        closed
    }

    /// Bytes written but not yet searched, over all files (checkpoint lag).
    pub fn lag(&self) -> u64 {
        self.live
            .values()
            .chain(self.rotated.iter())
            .map(|t| t.size().saturating_sub(t.offset))
            .sum()
    }

    /// Every followed file, live ones first.
    pub fn files_mut(&mut self) -> impl Iterator<Item = &mut Tailed> {
        self.live.values_mut().chain(self.rotated.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(t: &mut Tailed) -> Vec<String> {
        let mut out = Vec::new();
        let (end, line) = {
            let Some(mut r) = t.reader(1 << 20, u64::MAX, Instant::now()).unwrap() else {
                return out;
            };
            while let Some(item) = r.next_item().unwrap() {
                if let super::super::framing::Item::Record(rec, _) = item {
                    out.push(String::from_utf8_lossy(rec.bytes).into_owned());
                }
            }
            (r.consumed_offset(), r.next_line_number())
        };
        assert!(t.advance(end, line), "changed under the read");
        out
    }

    fn tailer(dir: &Path, start: StartAt, cps: Vec<Checkpoint>) -> Tailer {
        Tailer::new(
            vec![dir.join("app.log").display().to_string()],
            start,
            None,
            cps,
        )
    }

    #[test]
    fn rotated_keys_round_trip() {
        let k = rotated_key("/var/log/app.log", 64769, 1234);
        assert_eq!(
            parse_rotated_key(&k),
            Some(("/var/log/app.log", 64769, 1234))
        );
        assert_eq!(parse_rotated_key("/var/log/app.log"), None);
    }

    #[test]
    fn last_newline_end_finds_the_last_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"a\nbb\nccc").unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(last_newline_end(&f, 0, 8).unwrap(), 5);
        assert_eq!(last_newline_end(&f, 5, 8).unwrap(), 5);
        assert_eq!(last_newline_end(&f, 0, 1).unwrap(), 0);
    }

    #[test]
    fn partial_lines_wait_and_rotation_drains_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "old\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::End, Vec::new());
        t.reconcile();
        let live = t.live.get_mut(&p).unwrap();
        assert_eq!(live.offset, 4, "existing lines are skipped at startup");
        std::fs::write(&p, "old\none\ntw").unwrap();
        assert_eq!(read_all(live), ["one"]);
        // Renamed away with a partial line, a new file created: the old one is drained.
        std::fs::rename(&p, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&p, "new\n").unwrap();
        let events = t.reconcile();
        assert!(events.contains(&TailEvent::Rotated {
            path: p.display().to_string()
        }));
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["new"]);
        assert_eq!(t.rotated.len(), 1);
        assert!(
            read_all(&mut t.rotated[0]).is_empty(),
            "partial line held back"
        );
        assert!(t.forget.contains(&p.display().to_string()));
    }

    #[test]
    fn restart_resumes_or_finds_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, Vec::new());
        t.reconcile();
        let live = t.live.get_mut(&p).unwrap();
        assert_eq!(read_all(live), ["a", "b"]);
        let cp = live.checkpoint().unwrap();
        drop(t);

        // Same file, grown: resume at the offset.
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, vec![cp.clone()]);
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["c"]);
        drop(t);

        // Rotated while down: the rest of the old file from its new name, the new one whole.
        std::fs::rename(&p, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&p, "d\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, vec![cp.clone()]);
        t.reconcile();
        assert_eq!(read_all(&mut t.rotated[0]), ["c"]);
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["d"]);
        drop(t);

        // Old file gone too: reported lost.
        std::fs::remove_file(dir.path().join("app.log.1")).unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, vec![cp]);
        let events = t.reconcile();
        assert!(
            events.iter().any(|e| matches!(e, TailEvent::Lost { .. })),
            "{events:?}"
        );
    }

    #[test]
    fn truncation_is_seen_even_when_rewritten_past_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "aaaa\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, Vec::new());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["aaaa"]);
        std::fs::write(&p, "bbbbbbbbbb\n").unwrap();
        let events = t.reconcile();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TailEvent::Truncated { .. })),
            "{events:?}"
        );
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["bbbbbbbbbb"]);
    }

    fn dir_tailer(dir: &Path) -> Tailer {
        Tailer::new(
            vec![dir.display().to_string()],
            StartAt::Beginning,
            None,
            Vec::new(),
        )
    }

    #[test]
    fn a_rename_matched_by_the_pattern_is_followed_on_not_reread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut t = dir_tailer(dir.path());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["a", "b"]);
        // logrotate `create`: renamed, then a new file; the writer still appends to the old.
        let p1 = dir.path().join("app.log.1");
        std::fs::rename(&p, &p1).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p1)
            .unwrap()
            .write_all(b"c\n")
            .unwrap();
        std::fs::write(&p, "d\n").unwrap();
        let events = t.reconcile();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TailEvent::Renamed { to, .. } if to.ends_with("app.log.1"))),
            "{events:?}"
        );
        assert_eq!(read_all(t.live.get_mut(&p1).unwrap()), ["c"]);
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["d"]);
        assert!(t.rotated.is_empty());
        // Looked at again: nothing is read twice.
        t.reconcile();
        for f in t.files_mut() {
            assert!(read_all(f).is_empty());
        }
    }

    #[test]
    fn compressed_files_are_skipped_by_name_and_by_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.log"), "").unwrap();
        let mut t = dir_tailer(dir.path());
        t.reconcile();
        std::fs::write(dir.path().join("app.log.1.gz"), b"\x1f\x8b\x08\0\0\0").unwrap();
        // No telling name, gzip bytes.
        std::fs::write(dir.path().join("old"), b"\x1f\x8b\x08\0garbage\n").unwrap();
        let events = t.reconcile();
        let skipped = events
            .iter()
            .filter(|e| matches!(e, TailEvent::Skipped { .. }))
            .count();
        assert_eq!(skipped, 1, "{events:?}");
        let old = dir.path().join("old");
        assert!(read_all(t.live.get_mut(&old).unwrap()).is_empty());
        let events = t.reconcile();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TailEvent::Skipped { path, .. } if path.ends_with("old"))),
            "{events:?}"
        );
        assert!(!t.live.contains_key(&old));
        assert!(t.reconcile().is_empty(), "reported once");
    }

    #[test]
    fn a_copy_next_to_a_followed_file_is_not_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut t = dir_tailer(dir.path());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["a", "b"]);
        // copytruncate: copy, then truncate.
        std::fs::write(dir.path().join("app.log.1"), "a\nb\n").unwrap();
        let events = t.reconcile();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TailEvent::Skipped { .. })),
            "{events:?}"
        );
        std::fs::write(&p, "c\n").unwrap();
        t.reconcile();
        let mut all = Vec::new();
        for f in t.files_mut() {
            all.extend(read_all(f));
        }
        assert_eq!(all, ["c"]);
    }

    #[test]
    fn a_hole_left_by_a_writer_that_does_not_append_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&p)
            .unwrap();
        w.write_all(b"one\ntwo\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, Vec::new());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["one", "two"]);
        // The copy is taken, a line is written, then the file is truncated; the writer's next
        // line lands at its old position.
        std::fs::write(dir.path().join("app.log.1"), "one\ntwo\n").unwrap();
        w.write_all(b"three\n").unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        w.write_all(b"four\n").unwrap();
        let events = t.reconcile();
        assert!(
            events.iter().any(|e| matches!(
                e,
                TailEvent::Truncated {
                    recovered_from: Some(_),
                    ..
                }
            )),
            "{events:?}"
        );
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["four"]);
        let events = t.reconcile();
        // "three\n" (6 bytes) was in neither file: the hole is 14 bytes, the copy 8.
        assert!(
            events.contains(&TailEvent::Hole {
                path: p.display().to_string(),
                hole: 14,
                lost: 6
            }),
            "{events:?}"
        );
        assert!(
            read_all(&mut t.rotated[0]).is_empty(),
            "the copy holds nothing unread"
        );
    }

    #[test]
    fn a_copy_looked_at_after_an_unnoticed_truncation_is_known_by_the_bytes_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut t = dir_tailer(dir.path());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["a", "b"]);
        // copytruncate between the look at app.log and the look at its copy, in one pass
        // over the paths: app.log already starts with new lines.
        let p1 = dir.path().join("app.log.1");
        std::fs::write(&p1, "a\nb\n").unwrap();
        std::fs::write(&p, "c\n").unwrap();
        assert_eq!(t.copy_of(&p1), Some(p.clone()));
        let events = t.reconcile();
        assert!(
            !events.iter().any(
                |e| matches!(e, TailEvent::Opened { path, .. } if path.ends_with("app.log.1"))
            ),
            "{events:?}"
        );
        let mut all = Vec::new();
        for f in t.files_mut() {
            all.extend(read_all(f));
        }
        assert_eq!(all, ["c"]);
    }

    #[test]
    fn a_copy_that_shows_up_after_the_truncation_was_handled_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let away = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        let mut t = dir_tailer(dir.path());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["a", "b", "c"]);
        // The copy is taken where recur does not see it, app.log truncated and written to.
        let copy = away.path().join("copy");
        std::fs::copy(&p, &copy).unwrap();
        std::fs::write(&p, "d\n").unwrap();
        let events = t.reconcile();
        assert!(
            events.iter().any(|e| matches!(
                e,
                TailEvent::Truncated {
                    recovered_from: None,
                    lost: 0,
                    ..
                }
            )),
            "{events:?}"
        );
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["d"]);
        // Only now does the copy show up next to it, whole or cut short.
        std::fs::copy(&copy, dir.path().join("app.log.1")).unwrap();
        std::fs::write(dir.path().join("app.log.2"), "a\nb").unwrap();
        let events = t.reconcile();
        let skipped = events
            .iter()
            .filter(|e| matches!(e, TailEvent::Skipped { .. }))
            .count();
        assert_eq!(skipped, 2, "{events:?}");
        for f in t.files_mut() {
            assert!(read_all(f).is_empty());
        }
    }

    #[test]
    fn a_copy_that_reading_had_gone_past_is_named_and_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, Vec::new());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["a", "b"]);
        let p1 = dir.path().join("app.log.1");
        std::fs::write(&p1, "a\n").unwrap();
        std::fs::write(&p, "c\n").unwrap();
        let events = t.reconcile();
        assert!(
            events.contains(&TailEvent::Truncated {
                path: p.display().to_string(),
                offset: 4,
                recovered_from: Some(p1.display().to_string()),
                copy_behind: true,
                lost: 0,
            }),
            "{events:?}"
        );
        assert!(t.rotated.is_empty());
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["c"]);
    }

    #[test]
    fn a_truncation_between_the_look_and_the_read_drops_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&p)
            .unwrap();
        w.write_all(b"one\ntwo\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, Vec::new());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["one", "two"]);
        // Truncated after the look; the writer (not appending) goes on at its position.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        w.write_all(b"three\n").unwrap();
        let live = t.live.get_mut(&p).unwrap();
        let (end, line) = {
            let mut r = live
                .reader(1 << 20, u64::MAX, Instant::now())
                .unwrap()
                .expect("something to read");
            while r.next_item().unwrap().is_some() {}
            (r.consumed_offset(), r.next_line_number())
        };
        assert!(
            !live.advance(end, line),
            "the bytes before the offset changed"
        );
        assert_eq!(live.offset, 8);
        let events = t.reconcile();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TailEvent::Truncated { offset: 8, .. })),
            "{events:?}"
        );
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["three"]);
        let events = t.reconcile();
        assert!(
            events.contains(&TailEvent::Hole {
                path: p.display().to_string(),
                hole: 8,
                lost: 0
            }),
            "{events:?}"
        );
    }

    #[test]
    fn checkpoints_carry_the_size_seen_for_loss_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "a\npartial").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, Vec::new());
        t.reconcile();
        assert_eq!(read_all(t.live.get_mut(&p).unwrap()), ["a"]);
        let cp = t.live.get_mut(&p).unwrap().checkpoint().unwrap();
        assert_eq!((cp.offset, cp.size), (2, 9));
        drop(t);
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "new\n").unwrap();
        let mut t = tailer(dir.path(), StartAt::Beginning, vec![cp]);
        let events = t.reconcile();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TailEvent::Lost { bytes: 7, .. })),
            "{events:?}"
        );
    }
}
