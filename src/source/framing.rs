//! Framing: cutting a byte stream into records.
//!
//! Memory is bounded by `max_record` whatever the input: a record longer than the cap is not
//! buffered but skipped to its end and reported as [`Item::TooLong`] with its line number, so a
//! 100 MB line costs the same memory as a 1 MB one. A partial last line (no newline at EOF) is a
//! record like any other here; `watch` holds it back by looking at [`Record::terminated`].
//!
//! A reader's bytes are its own buffer, filled by `read` in blocks of [`BLOCK`], or, for chunks
//! of large files at rest ([`RecordReader::mapped_chunk`]), a read-only memory map that it walks
//! block by block without copying (the kernel's copy into a buffer was a third of a page-cached
//! scan's time), handing back the pages behind it every [`RELEASE`] bytes so that resident
//! memory stays bounded there too.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Deref;

use memmap2::{Advice, Mmap, MmapOptions, UncheckedAdvice};

use memchr::{memchr, memrchr};

use crate::decode::RecordMeta;
use crate::decode::cri::parse_cri_line;

/// How a stream is cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record per line (`\n`; a `\r` before it is dropped).
    Lines,
    /// A JSON array file: one record per top-level element, however many lines it spans.
    JsonArray,
    /// CRI container logs: partial (`P`) lines joined up to the full (`F`) line.
    Cri,
}

impl Framing {
    /// Guesses the framing from the first bytes of a decompressed stream.
    pub fn sniff(head: &[u8]) -> Framing {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let mut it = head.iter().copied().skip_while(|b| b.is_ascii_whitespace());
        if it.next() == Some(b'[') {
            // `[{` starts a JSON array file; `[INFO] …` or `[2025-…]` is a text log.
            match it.find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') | Some(b']') | None => return Framing::JsonArray,
                _ => {}
            }
        }
        let first_line = match memchr(b'\n', head) {
            Some(i) => &head[..i],
            None => head,
        };
        if crate::decode::cri::looks_like_cri(first_line) {
            return Framing::Cri;
        }
        Framing::Lines
    }
}

/// One record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's bytes without the line terminator.
    pub bytes: &'a [u8],
    /// 1-based number of the record's first line.
    pub line: u64,
    /// Stream offset just past the record (and its terminator).
    pub end_offset: u64,
    /// False for a last line that had no newline at end of stream.
    pub terminated: bool,
}

/// What the reader yields.
#[derive(Debug)]
pub enum Item<'a> {
    Record(Record<'a>, RecordMeta),
    /// A record over the cap: skipped, never buffered.
    TooLong {
        line: u64,
        len: u64,
        end_offset: u64,
    },
    /// Framing-level damage (e.g. a JSON array that is not closed): reported, reading goes on
    /// or ends as the framing allows.
    Malformed {
        line: u64,
        message: String,
    },
}

/// Bytes read per `read` call: large reads are what lets the hot path run at memory speed.
pub const BLOCK: usize = 256 * 1024;

/// Mapped bytes are released from the process (kept in the page cache) once the reading
/// point is this far past them. Each release flushes the TLB of every core the scan runs on
/// (an interrupt to each of them, costly in a virtual machine): with two reading threads, 4 MiB
/// windows cost 100 rules over 1 GB 0.104 s, 16 MiB windows 0.094 s. A reading thread keeps
/// up to this much of its file mapped (resident, but shared with the page cache).
pub const RELEASE: usize = 16 * 1024 * 1024;

/// The size of a huge page (x86-64, aarch64 with 4 KiB pages), to which releases are aligned.
const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// Where a reader's bytes are.
enum Buf {
    /// Its own buffer, filled by `read` and compacted as records are consumed.
    Owned(Vec<u8>),
    /// A read-only map of a file from the reader's base offset to the file's end at opening;
    /// `end` only grows, and the first `released` bytes have been handed back.
    Mapped { map: Mmap, released: usize },
}

impl Deref for Buf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Buf::Owned(v) => v,
            Buf::Mapped { map, .. } => map,
        }
    }
}

/// Reads records from a stream.
pub struct RecordReader<R> {
    src: R,
    framing: Framing,
    max_record: usize,
    buf: Buf,
    pos: usize,
    end: usize,
    /// Where to resume looking for the end of the current record.
    scan: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Line number of the next record's first line.
    line: u64,
    /// Skipping an over-long record: its first line and bytes skipped so far.
    skipping: Option<(u64, u64)>,
    /// Stop before a record that starts at or after this offset (chunked reading).
    stop_at: Option<u64>,
    array: ArrayState,
    /// CRI partial content waiting for its `F` line.
    partial: Vec<u8>,
    partial_line: u64,
    partial_over: bool,
    partial_meta: RecordMeta,
    /// The last joined CRI record, borrowed by the item returned for it.
    joined: Vec<u8>,
    bom_checked: bool,
    /// Records emitted, for line-number fix-ups of chunks.
    lines_seen: u64,
    /// Newlines of the last [`LineBlock`] not preceded by `}`, handed out with it.
    suspects: Vec<u32>,
    /// Searched during the shape pass (see [`RecordReader::set_anchor`]), and where it was
    /// found in the last block.
    anchor: Option<Anchor>,
    anchor_hits: Vec<u32>,
    line_marks: Vec<(u32, u32)>,
}

/// Several complete lines at once (see [`RecordReader::next_chunk`]).
#[derive(Debug, Clone, Copy)]
pub struct LineBlock<'a> {
    /// Whole lines, each ending with `\n` (a `\r` before it is still there).
    pub bytes: &'a [u8],
    /// Line number of the first line.
    pub first_line: u64,
    /// Number of lines in `bytes`.
    pub lines: u64,
    /// What the pass over `bytes` found (NUL, backslash, non-ASCII bytes).
    pub shape: Shape,
    /// Stream offset of `bytes[0]`.
    pub start_offset: u64,
    /// Indices (into `bytes`) of the newlines whose line does not end with `}`: the only lines
    /// that can be broken JSON, and the ones a text log is made of.
    pub suspects: &'a [u32],
    /// Where the reader's anchor occurs in `bytes` (every occurrence, in order), when it has
    /// one.
    pub anchor_hits: Option<&'a [u32]>,
    /// `(offset, newlines in bytes[..offset])` about every KiB, in order (empty when the pass
    /// had no 64-byte steps): the line number of a candidate is counted from the mark before
    /// it instead of from the one before, which at a 5% match rate meant counting the
    /// newlines of nearly every byte a second time.
    pub line_marks: &'a [(u32, u32)],
}

/// What [`RecordReader::next_chunk`] yields: a block of plain lines where possible, else one
/// item as [`RecordReader::next_item`] gives it.
#[derive(Debug)]
pub enum Chunk<'a> {
    Lines(LineBlock<'a>),
    Item(Item<'a>),
}

#[derive(Debug, Default, Clone, Copy)]
struct ArrayState {
    started: bool,
    done: bool,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Inside an element (non-whitespace seen since the last separator).
    in_elem: bool,
    /// Newlines inside the current element, counted while scanning.
    newlines: u64,
}

impl RecordReader<File> {
    /// [`RecordReader::chunk`] over a read-only memory map of `file` from `start - 1` to the
    /// file's current end, read without copying. Falls back to reading when the range is empty
    /// or the file cannot be mapped.
    ///
    /// A mapped file that another process truncates while it is read kills the reader with
    /// SIGBUS: map only files at rest (see [`crate::source::plan::open_chunk`]).
    pub fn mapped_chunk(
        mut file: File,
        max_record: usize,
        start: u64,
        end: u64,
    ) -> io::Result<Self> {
        let from = start.saturating_sub(1);
        let len = file.metadata()?.len();
        let mapped = match usize::try_from(len.saturating_sub(from)) {
            // SAFETY: a read-only map; see above for a file truncated while mapped.
            Ok(n) if n > 0 => unsafe { MmapOptions::new().offset(from).len(n).map(&file) }.ok(),
            _ => None,
        };
        let Some(map) = mapped else {
            file.seek(SeekFrom::Start(from))?;
            return RecordReader::chunk(file, max_record, start, end);
        };
        let _ = map.advise(Advice::Sequential);
        RecordReader::with_buf(
            file,
            Framing::Lines,
            max_record,
            Buf::Mapped { map, released: 0 },
        )
        .into_chunk(start, end)
    }
}

impl<R: Read> RecordReader<R> {
    pub fn new(src: R, framing: Framing, max_record: usize) -> Self {
        let cap = max_record.max(1024);
        Self::with_buf(src, framing, cap, Buf::Owned(vec![0; cap + BLOCK + 1]))
    }

    fn with_buf(src: R, framing: Framing, max_record: usize, buf: Buf) -> Self {
        RecordReader {
            src,
            framing,
            max_record: max_record.max(1024),
            buf,
            pos: 0,
            end: 0,
            scan: 0,
            base: 0,
            eof: false,
            line: 1,
            skipping: None,
            stop_at: None,
            array: ArrayState::default(),
            partial: Vec::new(),
            partial_line: 0,
            partial_over: false,
            partial_meta: RecordMeta::default(),
            joined: Vec::new(),
            bom_checked: false,
            lines_seen: 0,
            suspects: Vec::new(),
            anchor: None,
            anchor_hits: Vec::new(),
            line_marks: Vec::new(),
        }
    }

    /// A reader for one chunk of a file: `src` is positioned at `start - 1` (or 0 for the first
    /// chunk); the line that straddles `start` belongs to the previous chunk and is skipped, and
    /// reading stops at the first line that starts at or after `end`. Line numbers are local to
    /// the chunk; [`RecordReader::lines_seen`] lets the caller add the previous chunks' counts.
    pub fn chunk(src: R, max_record: usize, start: u64, end: u64) -> io::Result<Self> {
        RecordReader::new(src, Framing::Lines, max_record).into_chunk(start, end)
    }

    /// Makes a new reader, whose stream starts at `start - 1` (or 0), read the chunk from
    /// `start` to `end`.
    fn into_chunk(self, start: u64, end: u64) -> io::Result<Self> {
        let mut r = self;
        r.stop_at = Some(end);
        if start > 0 {
            r.bom_checked = true;
            r.base = start - 1;
            // Skip through the first newline at or after `start - 1`.
            loop {
                if r.pos == r.end && !r.fill()? {
                    break;
                }
                if let Some(i) = memchr(b'\n', &r.buf[r.pos..r.end]) {
                    r.pos += i + 1;
                    break;
                }
                r.pos = r.end;
                if r.base + r.pos as u64 >= end {
                    // No newline from `start - 1` to the chunk's end: no line starts in this
                    // chunk (it lies inside one long line), so there is nothing to read, and
                    // the rest of that line is not walked once per chunk.
                    break;
                }
            }
            r.scan = r.pos;
        }
        Ok(r)
    }

    /// A reader that continues a stream at `offset` with line number `line` (tailing).
    pub fn resume(src: R, framing: Framing, max_record: usize, offset: u64, line: u64) -> Self {
        let mut r = RecordReader::new(src, framing, max_record);
        r.base = offset;
        r.line = line;
        r.bom_checked = offset > 0;
        r
    }

    /// Makes the shape pass of every block also find `anchor` (see [`LineBlock::anchor_hits`]).
    pub fn set_anchor(&mut self, anchor: Option<Anchor>) {
        self.anchor = anchor;
    }

    /// The record length cap.
    pub fn max_record(&self) -> usize {
        self.max_record
    }

    /// Records (and over-long ones) emitted so far.
    pub fn lines_seen(&self) -> u64 {
        self.lines_seen
    }

    /// Line number the next record will carry.
    pub fn next_line_number(&self) -> u64 {
        self.line
    }

    /// Stream offset of the first byte not yet consumed as part of a record.
    pub fn consumed_offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Compacts the buffer and reads more (a mapped reader: takes the next block of the map).
    /// Returns false at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let buf = match &mut self.buf {
            Buf::Owned(buf) => buf,
            Buf::Mapped { map, released } => {
                // Records borrow from the map only until the next call: what lies before `pos`
                // is never looked at again, and is handed back so that resident memory stays
                // bounded (mapped pages count toward it, unlike pages read into a buffer).
                // Up to a 2 MiB boundary of the address space: a file the page cache holds in
                // 2 MiB folios is mapped a folio per page-table entry, and releasing part of
                // one splits it first (a second TLB flush, sent to every core the scan runs on).
                let base = map.as_ptr() as usize;
                let done = ((base + self.pos) & !(HUGE_PAGE - 1)).saturating_sub(base);
                if done >= *released + RELEASE {
                    // SAFETY: a read-only file mapping that nothing borrows from here (`fill`
                    // holds `&mut self`); a released page read again is read back from the
                    // file, the same bytes. A failure only costs memory.
                    let _ = unsafe {
                        map.unchecked_advise_range(
                            UncheckedAdvice::DontNeed,
                            *released,
                            done - *released,
                        )
                    };
                    *released = done;
                }
                if self.end >= map.len() {
                    self.eof = true;
                    return Ok(false);
                }
                self.end = (self.end + BLOCK).min(map.len());
                return Ok(true);
            }
        };
        if self.pos > 0 {
            buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.scan -= self.pos.min(self.scan);
            self.pos = 0;
        }
        let room = buf.len() - self.end;
        debug_assert!(room > 0);
        let want = room.min(BLOCK);
        loop {
            match self.src.read(&mut buf[self.end..self.end + want]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next item, `Ok(None)` at end of stream. An I/O error (a truncated archive, a
    /// vanished file) ends the stream; what was read before it has been returned already.
    pub fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        match self.framing {
            Framing::Lines => self.next_line_item(),
            Framing::JsonArray => self.next_array_item(),
            Framing::Cri => self.next_cri_item(),
        }
    }

    /// The next block of complete lines, or the next item where a block cannot be cut (a JSON
    /// array or CRI stream, the first line of a stream, an over-long line, a last line without
    /// newline). Blocks are what lets the searcher look at many lines with one pass of each
    /// search instead of one call per line; lines in a block may still be longer than the cap
    /// (up to the buffer's size), which the searcher checks.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk<'_>>> {
        if let Some(block) = self.block_bounds()? {
            let (from, to) = block;
            let bytes = &self.buf[from..to];
            let shape = shape_scan(
                bytes,
                &mut self.suspects,
                self.anchor.as_ref(),
                &mut self.anchor_hits,
                &mut self.line_marks,
            );
            let lines = shape.lines;
            let first_line = self.line;
            self.line += lines;
            self.lines_seen += lines;
            self.pos = to;
            self.scan = to;
            return Ok(Some(Chunk::Lines(LineBlock {
                bytes: &self.buf[from..to],
                first_line,
                lines,
                shape,
                start_offset: self.base + from as u64,
                suspects: &self.suspects,
                anchor_hits: self.anchor.as_ref().map(|_| self.anchor_hits.as_slice()),
                line_marks: &self.line_marks,
            })));
        }
        Ok(self.next_item()?.map(Chunk::Item))
    }

    /// Buffer bounds of the next block of whole lines, if one can be cut now.
    fn block_bounds(&mut self) -> io::Result<Option<(usize, usize)>> {
        if self.framing != Framing::Lines || !self.bom_checked || self.skipping.is_some() {
            return Ok(None);
        }
        if let Some(stop) = self.stop_at
            && self.base + self.pos as u64 >= stop
        {
            return Ok(None);
        }
        // What is left of the last read is usually part of a line: read more first. (Only
        // then, so that an I/O error never hides lines already read.)
        if memchr(b'\n', &self.buf[self.pos..self.end]).is_none() && !self.fill()? {
            return Ok(None);
        }
        let mut limit = self.end;
        if let Some(stop) = self.stop_at {
            // Lines that start before `stop` belong to this reader; the last of them ends at
            // the first newline at or after `stop - 1`.
            let from = ((stop - 1).saturating_sub(self.base) as usize).max(self.pos);
            if from < self.end {
                match memchr(b'\n', &self.buf[from..self.end]) {
                    Some(i) => limit = from + i + 1,
                    None => return Ok(None),
                }
            }
        }
        match memrchr(b'\n', &self.buf[self.pos..limit]) {
            // Indices into a block are `u32`s.
            Some(i) if i < u32::MAX as usize => Ok(Some((self.pos, self.pos + i + 1))),
            _ => Ok(None),
        }
    }

    /// Finds the next line: `Some((start, end, terminated))` as buffer indices, or a too-long
    /// report. Shared by line and CRI framing.
    fn raw_line(&mut self) -> io::Result<Option<RawLine>> {
        loop {
            if !self.bom_checked && (self.end - self.pos >= 3 || self.eof) {
                self.bom_checked = true;
                if self.buf[self.pos..self.end].starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                    self.scan = self.scan.max(self.pos);
                }
            }
            if let Some(stop) = self.stop_at
                && self.skipping.is_none()
                && self.base + self.pos as u64 >= stop
                && self.bom_checked
            {
                return Ok(None);
            }
            let from = self.scan.max(self.pos);
            if self.bom_checked {
                if let Some(i) = memchr(b'\n', &self.buf[from..self.end]) {
                    let nl = from + i;
                    let start = self.pos;
                    self.pos = nl + 1;
                    self.scan = self.pos;
                    let line = self.line;
                    self.line += 1;
                    self.lines_seen += 1;
                    let end_offset = self.base + self.pos as u64;
                    if let Some((first, skipped)) = self.skipping.take() {
                        return Ok(Some(RawLine::TooLong {
                            line: first,
                            len: skipped + (nl - start) as u64,
                            end_offset,
                        }));
                    }
                    if nl - start > self.max_record {
                        return Ok(Some(RawLine::TooLong {
                            line,
                            len: (nl - start) as u64,
                            end_offset,
                        }));
                    }
                    let mut e = nl;
                    if e > start && self.buf[e - 1] == b'\r' {
                        e -= 1;
                    }
                    return Ok(Some(RawLine::Line {
                        start,
                        end: e,
                        line,
                        end_offset,
                        terminated: true,
                    }));
                }
                self.scan = self.end;
                let pending = (self.end - self.pos) as u64;
                if let Some((_, skipped)) = &mut self.skipping {
                    *skipped += pending;
                    self.pos = self.end;
                    self.scan = self.end;
                } else if self.end - self.pos > self.max_record {
                    self.skipping = Some((self.line, pending));
                    self.pos = self.end;
                    self.scan = self.end;
                }
            }
            if !self.fill()? {
                if !self.bom_checked {
                    // A stream shorter than a BOM: look for its newlines before its end.
                    continue;
                }
                // End of stream: a last line without newline, or an over-long tail.
                if let Some((first, skipped)) = self.skipping.take() {
                    self.line += 1;
                    self.lines_seen += 1;
                    return Ok(Some(RawLine::TooLong {
                        line: first,
                        len: skipped,
                        end_offset: self.base + self.end as u64,
                    }));
                }
                self.bom_checked = true;
                if self.pos < self.end {
                    let start = self.pos;
                    self.pos = self.end;
                    self.scan = self.end;
                    let line = self.line;
                    self.line += 1;
                    self.lines_seen += 1;
                    let mut e = self.end;
                    if self.buf[e - 1] == b'\r' {
                        e -= 1;
                    }
                    return Ok(Some(RawLine::Line {
                        start,
                        end: e,
                        line,
                        end_offset: self.base + self.end as u64,
                        terminated: false,
                    }));
                }
                return Ok(None);
            }
        }
    }

    fn next_line_item(&mut self) -> io::Result<Option<Item<'_>>> {
        Ok(match self.raw_line()? {
            None => None,
            Some(RawLine::TooLong {
                line,
                len,
                end_offset,
            }) => Some(Item::TooLong {
                line,
                len,
                end_offset,
            }),
            Some(RawLine::Line {
                start,
                end,
                line,
                end_offset,
                terminated,
            }) => Some(Item::Record(
                Record {
                    bytes: &self.buf[start..end],
                    line,
                    end_offset,
                    terminated,
                },
                RecordMeta::default(),
            )),
        })
    }

    fn next_cri_item(&mut self) -> io::Result<Option<Item<'_>>> {
        loop {
            let (start, end, line, end_offset, terminated) = match self.raw_line()? {
                None => {
                    // A stream that ends inside a partial record: hand over what there is.
                    if !self.partial.is_empty() || self.partial_over {
                        return Ok(Some(self.take_partial(false)));
                    }
                    return Ok(None);
                }
                Some(RawLine::TooLong {
                    line,
                    len,
                    end_offset,
                }) => {
                    return Ok(Some(Item::TooLong {
                        line,
                        len,
                        end_offset,
                    }));
                }
                Some(RawLine::Line {
                    start,
                    end,
                    line,
                    end_offset,
                    terminated,
                }) => (start, end, line, end_offset, terminated),
            };
            let Some(cri) = parse_cri_line(&self.buf[start..end]) else {
                // Not a CRI line (e.g. garbage between entries): an ordinary record.
                return Ok(Some(Item::Record(
                    Record {
                        bytes: &self.buf[start..end],
                        line,
                        end_offset,
                        terminated,
                    },
                    RecordMeta::default(),
                )));
            };
            let meta = RecordMeta {
                time: Some(cri.time),
                stream: Some(cri.stream.to_string()),
            };
            if self.partial.is_empty() && !self.partial_over && !cri.partial {
                let off = cri.content.as_ptr() as usize - self.buf.as_ptr() as usize;
                let len = cri.content.len();
                return Ok(Some(Item::Record(
                    Record {
                        bytes: &self.buf[off..off + len],
                        line,
                        end_offset,
                        terminated,
                    },
                    meta,
                )));
            }
            if self.partial.is_empty() && !self.partial_over {
                self.partial_line = line;
            }
            if self.partial.len() + cri.content.len() > self.max_record {
                self.partial_over = true;
                self.partial.clear();
            } else if !self.partial_over {
                self.partial.extend_from_slice(cri.content);
            }
            if !cri.partial {
                self.partial_meta = meta;
                let item = self.take_partial_with(end_offset, terminated);
                return Ok(Some(item));
            }
            self.partial_meta = meta;
        }
    }

    fn take_partial(&mut self, terminated: bool) -> Item<'_> {
        let end_offset = self.base + self.pos as u64;
        self.take_partial_with(end_offset, terminated)
    }

    fn take_partial_with(&mut self, end_offset: u64, terminated: bool) -> Item<'_> {
        let line = self.partial_line;
        if std::mem::take(&mut self.partial_over) {
            let len = self.partial.len() as u64;
            self.partial.clear();
            return Item::TooLong {
                line,
                len: len.max(self.max_record as u64 + 1),
                end_offset,
            };
        }
        // Move the joined bytes into the slot the record borrows from.
        std::mem::swap(&mut self.partial, &mut self.joined);
        self.partial.clear();
        let meta = std::mem::take(&mut self.partial_meta);
        Item::Record(
            Record {
                bytes: &self.joined,
                line,
                end_offset,
                terminated,
            },
            meta,
        )
    }

    fn next_array_item(&mut self) -> io::Result<Option<Item<'_>>> {
        loop {
            if self.array.done {
                return Ok(None);
            }
            // Scan forward from `scan` for the end of the current element.
            let mut i = self.scan.max(self.pos);
            let mut found: Option<(usize, usize)> = None; // (elem start, elem end exclusive)
            let st = &mut self.array;
            let buf = &self.buf[..self.end];
            let mut elem_start = if st.in_elem { Some(self.pos) } else { None };
            let mut sep_newlines = 0u64;
            while i < buf.len() {
                let b = buf[i];
                if !st.started {
                    if b == 0xEF && buf[i..].starts_with(b"\xEF\xBB\xBF") {
                        i += 3;
                        continue;
                    }
                    if b == b'[' {
                        st.started = true;
                    } else if b == b'\n' {
                        sep_newlines += 1;
                    }
                    i += 1;
                    self.pos = i;
                    continue;
                }
                if !st.in_elem {
                    match b {
                        b'\n' => sep_newlines += 1,
                        b' ' | b'\t' | b'\r' | b',' => {}
                        b']' => {
                            st.done = true;
                            i += 1;
                            self.pos = i;
                            break;
                        }
                        _ => {
                            st.in_elem = true;
                            st.newlines = 0;
                            elem_start = Some(i);
                            self.pos = i;
                            continue;
                        }
                    }
                    i += 1;
                    self.pos = i;
                    continue;
                }
                // Inside an element.
                if st.in_string {
                    if st.escape {
                        st.escape = false;
                    } else if b == b'\\' {
                        st.escape = true;
                    } else if b == b'"' {
                        st.in_string = false;
                    } else if b == b'\n' {
                        st.newlines += 1;
                    }
                    i += 1;
                    continue;
                }
                match b {
                    b'"' => st.in_string = true,
                    b'{' | b'[' => st.depth += 1,
                    b'}' | b']' if st.depth > 0 => {
                        st.depth -= 1;
                        if st.depth == 0 {
                            found = Some((elem_start.unwrap_or(self.pos), i + 1));
                            i += 1;
                            break;
                        }
                    }
                    b']' => {
                        // End of the array right after a scalar element.
                        found = Some((elem_start.unwrap_or(self.pos), i));
                        st.done = true;
                        i += 1;
                        break;
                    }
                    b',' if st.depth == 0 => {
                        found = Some((elem_start.unwrap_or(self.pos), i));
                        i += 1;
                        break;
                    }
                    b'\n' => st.newlines += 1,
                    _ => {}
                }
                i += 1;
            }
            self.line += sep_newlines;
            if let Some((s, e)) = found {
                let st = &mut self.array;
                st.in_elem = false;
                let line = self.line;
                self.line += st.newlines;
                self.lines_seen += 1;
                self.pos = i;
                self.scan = i;
                let end_offset = self.base + i as u64;
                if let Some((first, skipped)) = self.skipping.take() {
                    return Ok(Some(Item::TooLong {
                        line: first,
                        len: skipped + (e - s) as u64,
                        end_offset,
                    }));
                }
                if e - s > self.max_record {
                    return Ok(Some(Item::TooLong {
                        line,
                        len: (e - s) as u64,
                        end_offset,
                    }));
                }
                let mut end = e;
                while end > s && self.buf[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                return Ok(Some(Item::Record(
                    Record {
                        bytes: &self.buf[s..end],
                        line,
                        end_offset,
                        terminated: true,
                    },
                    RecordMeta::default(),
                )));
            }
            if self.array.done {
                continue;
            }
            self.scan = i;
            if self.array.in_elem {
                let pending = (self.end - self.pos) as u64;
                if let Some((_, skipped)) = &mut self.skipping {
                    *skipped += pending;
                    self.pos = self.end;
                    self.scan = self.end;
                } else if self.end - self.pos > self.max_record {
                    self.skipping = Some((self.line, pending));
                    self.pos = self.end;
                    self.scan = self.end;
                }
            }
            if !self.fill()? {
                let line = self.line;
                self.array.done = true;
                if !self.array.started {
                    return Ok(None);
                }
                if let Some((first, skipped)) = self.skipping.take() {
                    return Ok(Some(Item::TooLong {
                        line: first,
                        len: skipped,
                        end_offset: self.base + self.end as u64,
                    }));
                }
                return Ok(Some(Item::Malformed {
                    line,
                    message: "the JSON array is not closed (file truncated?)".into(),
                }));
            }
        }
    }
}

/// What one pass over a block found (see [`shape_scan`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Newlines in the block.
    pub lines: u64,
    /// Some byte is NUL.
    pub nul: bool,
    /// Some byte is a backslash (so a `\u` escape may be there).
    pub backslash: bool,
    /// Some byte is not ASCII (so UTF-8 must be validated).
    pub non_ascii: bool,
}

/// A byte string the shape pass looks for on its way (see [`shape_scan`]): when a whole
/// prefilter is one literal, finding it costs no pass of its own over the block (see
/// `Prefilter::single_needle` for why an indexed key is not searched this way). Found like `memchr`'s packed-pair search: two of its bytes, chosen to
/// be rare in logs, are compared at their offsets 32 positions at a time, and candidates are
/// verified whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    needle: Vec<u8>,
    i1: usize,
    i2: usize,
    /// For an indexed key: the first bytes of values no rule wants. A hit followed by `":"`
    /// and such a byte (`"error_code":"OK"` when the rules want `NO_TOKEN` and `LEGACY_…`)
    /// is dropped in the pass, as the prefilter would drop it: in a log where the key is in
    /// every line, three hits in four then never reach the prefilter.
    unwanted: Option<Box<[bool; 256]>>,
}

/// How common a byte is in structured logs (higher: more common), for choosing an anchor's
/// pair: punctuation of JSON and logfmt, digits and lowercase letters are everywhere.
fn log_rank(b: u8) -> u16 {
    match b {
        b'"' | b':' | b',' | b' ' | b'=' | b'{' | b'}' => 300,
        b'0'..=b'9' | b'_' | b'-' | b'.' | b'/' => 280,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 270,
        b'a'..=b'z' => 250,
        b'A'..=b'Z' => 200,
        _ => 100,
    }
}

impl Anchor {
    /// An anchor for `needle`, when it is long enough to have a pair (and short enough for
    /// the pass's look-ahead).
    pub fn new(needle: &[u8]) -> Option<Anchor> {
        if needle.len() < 2 || needle.len() > 64 {
            return None;
        }
        let mut order: Vec<usize> = (0..needle.len()).collect();
        order.sort_by_key(|&i| (log_rank(needle[i]), std::cmp::Reverse(i)));
        let i1 = order[0];
        let i2 = order
            .iter()
            .copied()
            .find(|&i| needle[i] != needle[i1])
            .unwrap_or(order[1]);
        Some(Anchor {
            needle: needle.to_vec(),
            i1: i1.min(i2),
            i2: i1.max(i2),
            unwanted: None,
        })
    }

    /// Drops the hits followed by `":"` and a byte marked in `first` (see [`Anchor`]).
    pub fn with_unwanted_values(mut self, first: [bool; 256]) -> Anchor {
        self.unwanted = Some(Box::new(first));
        self
    }

    /// Whether a hit at `pos` is a plainly spelled key whose value no rule wants.
    #[inline]
    fn unwanted_at(&self, bytes: &[u8], pos: usize) -> bool {
        let Some(first) = &self.unwanted else {
            return false;
        };
        let e = pos + self.needle.len();
        bytes.get(e..e + 3) == Some(b"\":\"")
            && bytes.get(e + 3).is_some_and(|&b| first[b as usize])
    }

    /// Whether the needle is at `pos` in `bytes`. Called for every pair the pass finds (an
    /// indexed key: every line), so a needle of 8 to 16 bytes is compared as two words that
    /// overlap, not by a call to `memcmp` (4% of a 100-rule scan's reading thread).
    #[inline]
    fn at(&self, bytes: &[u8], pos: usize) -> bool {
        let n = self.needle.len();
        let Some(hay) = bytes.get(pos..pos + n) else {
            return false;
        };
        if (8..=16).contains(&n) {
            let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
            word(hay, 0) == word(&self.needle, 0) && word(hay, n - 8) == word(&self.needle, n - 8)
        } else {
            hay == self.needle.as_slice()
        }
    }
}

/// One pass over every byte the scanner reads: counts the lines of `bytes`, collects in
/// `suspects` the newlines not preceded by `}`, and notes whether NUL, backslash or non-ASCII
/// bytes occur, so that the common block (ASCII JSON lines without escapes) skips the NUL,
/// UTF-8 and `\u` passes entirely; with an `anchor`, also collects in `hits` where it occurs
/// (every occurrence, overlapping ones too). 64 bytes at a time with AVX-512 or AVX2, 16 with
/// SSE2. The 64-byte passes also leave in `marks` line counts along the way (see
/// [`LineBlock::line_marks`]).
pub fn shape_scan(
    bytes: &[u8],
    suspects: &mut Vec<u32>,
    anchor: Option<&Anchor>,
    hits: &mut Vec<u32>,
    marks: &mut Vec<(u32, u32)>,
) -> Shape {
    shape_scan_with(Simd::detect(), bytes, suspects, anchor, hits, marks)
}

/// How often (in bytes) the shape pass notes how many lines it has passed.
const MARK_EVERY: usize = 1024;

/// Whether [`shape_scan`] runs 64-byte steps in one register (AVX-512) on this machine: then
/// it finds even a key that is in every line on its way more cheaply than a separate search.
pub fn wide_shape_pass() -> bool {
    Simd::detect() == Simd::Avx512
}

/// The vector instructions [`shape_scan`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    /// 64 bytes a step, comparisons into mask registers.
    Avx512,
    /// 64 bytes a step in two registers.
    Avx2,
    /// 16 bytes a step (the x86-64 baseline).
    Sse2,
    /// A plain loop (other architectures).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Scalar,
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bw") {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
            Simd::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        Simd::Scalar
    }

    /// Every level this machine can run, the detected one first.
    #[cfg(test)]
    fn available() -> Vec<Simd> {
        let all = [Simd::Avx512, Simd::Avx2, Simd::Sse2, Simd::Scalar];
        let top = all.iter().position(|&s| s == Simd::detect()).unwrap_or(3);
        all[top..].to_vec()
    }
}

fn shape_scan_with(
    simd: Simd,
    bytes: &[u8],
    suspects: &mut Vec<u32>,
    anchor: Option<&Anchor>,
    hits: &mut Vec<u32>,
    marks: &mut Vec<(u32, u32)>,
) -> Shape {
    suspects.clear();
    hits.clear();
    marks.clear();
    let mut shape = Shape::default();
    let mut i = 0usize;
    match bytes.first() {
        Some(b'\n') => {
            suspects.push(0);
            shape.lines += 1;
        }
        Some(0) => shape.nul = true,
        Some(b'\\') => shape.backslash = true,
        Some(0x80..) => shape.non_ascii = true,
        _ => {}
    }
    if !bytes.is_empty() {
        i = 1;
    }
    // Anchor positions before `found_to` have been looked at (the vector pass starts at 1).
    let mut found_to = 0usize;
    #[cfg(target_arch = "x86_64")]
    {
        if bytes.len() > 64 {
            static NO_ANCHOR: Anchor = Anchor::NONE;
            let (a, none) = (anchor.unwrap_or(&NO_ANCHOR), anchor.is_none());
            // SAFETY: `simd` is what `Simd::detect` found this machine to have (or less).
            let wide = unsafe {
                match (simd, none) {
                    (Simd::Avx512, false) => Some(x86::shape_avx512::<true>(
                        bytes, i, suspects, &mut shape, a, hits, marks,
                    )),
                    (Simd::Avx512, true) => Some(x86::shape_avx512::<false>(
                        bytes, i, suspects, &mut shape, a, hits, marks,
                    )),
                    (Simd::Avx2, false) => Some(x86::shape_avx2::<true>(
                        bytes, i, suspects, &mut shape, a, hits, marks,
                    )),
                    (Simd::Avx2, true) => Some(x86::shape_avx2::<false>(
                        bytes, i, suspects, &mut shape, a, hits, marks,
                    )),
                    (Simd::Sse2, _) => {
                        i = x86::shape_sse2(bytes, i, suspects, &mut shape);
                        None
                    }
                    (Simd::Scalar, _) => None,
                }
            };
            if let Some(end) = wide {
                i = end;
                if let Some(a) = anchor {
                    found_to = i;
                    if bytes.starts_with(&a.needle) {
                        hits.insert(0, 0);
                    }
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = simd;
    for (j, &b) in bytes.iter().enumerate().skip(i) {
        match b {
            b'\n' => {
                shape.lines += 1;
                if j == 0 || bytes[j - 1] != b'}' {
                    suspects.push(j as u32);
                }
            }
            0 => shape.nul = true,
            b'\\' => shape.backslash = true,
            0x80.. => shape.non_ascii = true,
            _ => {}
        }
    }
    if let Some(a) = anchor {
        let n = a.needle.len();
        let mut at = found_to;
        while at + n <= bytes.len() {
            match memchr::memmem::find(&bytes[at..], &a.needle) {
                Some(k) => {
                    hits.push((at + k) as u32);
                    at += k + 1;
                }
                None => break,
            }
        }
    }
    shape
}

impl Anchor {
    /// Placeholder for the anchor-less pass (never read).
    const NONE: Anchor = Anchor {
        needle: Vec::new(),
        i1: 0,
        i2: 0,
        unwanted: None,
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Anchor, Shape};
    use std::arch::x86_64::*;

    /// How far ahead of the pass its bytes are asked for (software prefetch).
    const PREFETCH_AHEAD: usize = 4096;

    /// Asks for the cache line `PREFETCH_AHEAD` bytes past `p + at`. The pass is bound by
    /// bringing the file in from memory (its first use of each load is where it waits), and
    /// the hardware's prefetchers do not run ahead across 4 KiB pages; asking a page ahead took
    /// the pass over 1 GB of mapped JSON lines from 99 to 75 ms. A prefetch is only a hint:
    /// past the end of the bytes, or on a page not mapped yet, it does nothing (it never
    /// faults), so the address need not be inside `bytes`.
    #[inline(always)]
    fn prefetch_ahead(p: *const u8, at: usize) {
        // SAFETY: a prefetch reads nothing the program sees and cannot fault (see above).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(at + PREFETCH_AHEAD) as *const i8) }
    }

    /// Scans `bytes[i..]` in 64-byte steps from `i >= 1`; returns where it stopped. With
    /// `ANCHOR`, also finds the anchor's candidates (its pair of bytes at their offsets) and
    /// pushes the verified ones to `hits`.
    ///
    /// The loop makes no call: suspect newlines and anchor candidates are parked as
    /// `(offset, mask)` pairs in small arrays and handled after it, so the accumulators stay
    /// in registers (a call would clobber every vector register and make the compiler keep
    /// them in memory).
    ///
    /// # Safety
    /// AVX2 must be available. Every load reads 32 bytes within `bytes`: the loop runs while
    /// `i + 64 <= len` (with `ANCHOR`, `i + i2 + 64 <= len`), from `i >= 1`.
    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn shape_avx2<const ANCHOR: bool>(
        bytes: &[u8],
        mut i: usize,
        suspects: &mut Vec<u32>,
        shape: &mut Shape,
        anchor: &Anchor,
        hits: &mut Vec<u32>,
        marks: &mut Vec<(u32, u32)>,
    ) -> usize {
        let p = bytes.as_ptr();
        // SAFETY (for every load below): `i >= 1`, and the loop runs while
        // `i + reach <= len`, `reach` covering the farthest load.
        let load = |at: usize| unsafe { _mm256_loadu_si256(p.add(at) as *const __m256i) };
        let prefetch = |at: usize| prefetch_ahead(p, at);
        let mask = |v: __m256i, b: __m256i| _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, b)) as u32;
        let wide = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
        let nl = _mm256_set1_epi8(b'\n' as i8);
        let close = _mm256_set1_epi8(b'}' as i8);
        let bs = _mm256_set1_epi8(b'\\' as i8);
        let zero = _mm256_setzero_si256();
        let (i1, i2) = (anchor.i1, anchor.i2);
        let (b1, b2) = if ANCHOR {
            (
                _mm256_set1_epi8(anchor.needle[i1] as i8),
                _mm256_set1_epi8(anchor.needle[i2] as i8),
            )
        } else {
            (zero, zero)
        };
        // 64 bytes a step: one branch per 64 bytes for newlines and one for anchor
        // candidates (without mask registers, the branch-free form of `shape_avx512` cost
        // more than the mispredictions: 0.12 -> 0.19 s over 1 GB).
        let reach = if ANCHOR { 64 + i2 } else { 64 };
        let mut lines = 0u64;
        let mut parked = [(0u32, 0u64); 64];
        let mut cands = [(0u32, 0u64); 64];
        loop {
            // Vector accumulators live only within the inner loop (see above).
            let mut min_nul = _mm256_set1_epi8(-1);
            let mut min_bs = _mm256_set1_epi8(-1);
            let mut flags_hi = zero;
            let mut np = 0;
            let mut nc = 0;
            while i + reach <= bytes.len() && np < parked.len() && nc < cands.len() {
                if i % super::MARK_EVERY < 64 {
                    marks.push((i as u32, (shape.lines + lines) as u32));
                }
                prefetch(i);
                let va = load(i);
                let vb = load(i + 32);
                min_nul = _mm256_min_epu8(min_nul, _mm256_min_epu8(va, vb));
                min_bs = _mm256_min_epu8(
                    min_bs,
                    _mm256_min_epu8(_mm256_xor_si256(va, bs), _mm256_xor_si256(vb, bs)),
                );
                flags_hi = _mm256_or_si256(flags_hi, _mm256_or_si256(va, vb));
                let n = wide(mask(va, nl), mask(vb, nl));
                if n != 0 {
                    lines += n.count_ones() as u64;
                    let c = wide(mask(load(i - 1), close), mask(load(i + 31), close));
                    let bad = n & !c;
                    if bad != 0 {
                        parked[np] = (i as u32, bad);
                        np += 1;
                    }
                }
                if ANCHOR {
                    let pair = |at: usize| {
                        _mm256_movemask_epi8(_mm256_and_si256(
                            _mm256_cmpeq_epi8(load(at + i1), b1),
                            _mm256_cmpeq_epi8(load(at + i2), b2),
                        )) as u32
                    };
                    let m = wide(pair(i), pair(i + 32));
                    if m != 0 {
                        cands[nc] = (i as u32, m);
                        nc += 1;
                    }
                }
                i += 64;
            }
            shape.backslash |= mask(min_bs, zero) != 0;
            shape.nul |= mask(min_nul, zero) != 0;
            shape.non_ascii |= _mm256_movemask_epi8(flags_hi) != 0;
            drain(
                bytes,
                &parked[..np],
                &cands[..nc],
                ANCHOR,
                anchor,
                suspects,
                hits,
            );
            if np < parked.len() && nc < cands.len() {
                break;
            }
        }
        shape.lines += lines;
        i
    }

    /// After a run of steps: the suspect newlines and the verified anchor candidates, from
    /// their parked `(offset, mask)` pairs.
    fn drain(
        bytes: &[u8],
        parked: &[(u32, u64)],
        cands: &[(u32, u64)],
        anchored: bool,
        anchor: &Anchor,
        suspects: &mut Vec<u32>,
        hits: &mut Vec<u32>,
    ) {
        for &(at, mut bad) in parked {
            while bad != 0 {
                suspects.push(at + bad.trailing_zeros());
                bad &= bad - 1;
            }
        }
        if anchored {
            for &(at, mut m) in cands {
                while m != 0 {
                    let pos = at as usize + m.trailing_zeros() as usize;
                    if anchor.at(bytes, pos) && !anchor.unwanted_at(bytes, pos) {
                        hits.push(pos as u32);
                    }
                    m &= m - 1;
                }
            }
        }
    }

    /// [`shape_avx2`] with AVX-512 (BW): the same 64 bytes a step in one register, the
    /// comparisons straight into mask registers (no movemask, no pairing of halves).
    ///
    /// # Safety
    /// AVX-512 F and BW must be available; the same bounds as [`shape_avx2`].
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    pub(super) unsafe fn shape_avx512<const ANCHOR: bool>(
        bytes: &[u8],
        mut i: usize,
        suspects: &mut Vec<u32>,
        shape: &mut Shape,
        anchor: &Anchor,
        hits: &mut Vec<u32>,
        marks: &mut Vec<(u32, u32)>,
    ) -> usize {
        let p = bytes.as_ptr();
        // SAFETY (for every load below): as in `shape_avx2`.
        let load = |at: usize| unsafe { _mm512_loadu_si512(p.add(at) as *const __m512i) };
        let prefetch = |at: usize| prefetch_ahead(p, at);
        let nl = _mm512_set1_epi8(b'\n' as i8);
        let close = _mm512_set1_epi8(b'}' as i8);
        let bs = _mm512_set1_epi8(b'\\' as i8);
        let zero = _mm512_setzero_si512();
        let (i1, i2) = (anchor.i1, anchor.i2);
        let (b1, b2) = if ANCHOR {
            (
                _mm512_set1_epi8(anchor.needle[i1] as i8),
                _mm512_set1_epi8(anchor.needle[i2] as i8),
            )
        } else {
            (zero, zero)
        };
        let reach = if ANCHOR { 64 + i2 } else { 64 };
        let mut lines = 0u64;
        let mut parked = [(0u32, 0u64); 64];
        let mut cands = [(0u32, 0u64); 64];
        loop {
            // NUL and backslash are noted by taking minima (of the bytes, and of the bytes
            // xor `\\`): a zero byte in either means one was seen. Unlike a comparison into a
            // mask register, `vpminub` is not bound to the one port the comparisons share.
            let mut min_nul = _mm512_set1_epi8(-1);
            let mut min_bs = _mm512_set1_epi8(-1);
            let mut flags_hi = zero;
            let mut np = 0;
            let mut nc = 0;
            while i + reach <= bytes.len() && np < parked.len() && nc < cands.len() {
                if i % super::MARK_EVERY < 64 {
                    marks.push((i as u32, (shape.lines + lines) as u32));
                }
                prefetch(i);
                let v = load(i);
                min_nul = _mm512_min_epu8(min_nul, v);
                min_bs = _mm512_min_epu8(min_bs, _mm512_xor_si512(v, bs));
                flags_hi = _mm512_or_si512(flags_hi, v);
                // No branch on whether a step holds a newline (one step in five, at random)
                // or an anchor candidate (with an indexed key, as often): the pair is
                // written to the next free slot either way and the slot taken only when it
                // holds something. Mispredicted branches were a fifth of the pass.
                let n = _mm512_cmpeq_epi8_mask(v, nl);
                lines += n.count_ones() as u64;
                let bad = n & !_mm512_cmpeq_epi8_mask(load(i - 1), close);
                parked[np] = (i as u32, bad);
                np += (bad != 0) as usize;
                if ANCHOR {
                    let m = _mm512_cmpeq_epi8_mask(load(i + i1), b1)
                        & _mm512_cmpeq_epi8_mask(load(i + i2), b2);
                    cands[nc] = (i as u32, m);
                    nc += (m != 0) as usize;
                }
                i += 64;
            }
            shape.backslash |= _mm512_cmpeq_epi8_mask(min_bs, zero) != 0;
            shape.nul |= _mm512_cmpeq_epi8_mask(min_nul, zero) != 0;
            shape.non_ascii |= _mm512_movepi8_mask(flags_hi) != 0;
            drain(
                bytes,
                &parked[..np],
                &cands[..nc],
                ANCHOR,
                anchor,
                suspects,
                hits,
            );
            if np < parked.len() && nc < cands.len() {
                break;
            }
        }
        shape.lines += lines;
        i
    }

    /// The same in 16-byte steps.
    ///
    /// # Safety
    /// Every load reads 16 bytes within `bytes`: `i - 1 + 16 <= len`.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn shape_sse2(
        bytes: &[u8],
        mut i: usize,
        suspects: &mut Vec<u32>,
        shape: &mut Shape,
    ) -> usize {
        let p = bytes.as_ptr();
        let nl = _mm_set1_epi8(b'\n' as i8);
        let close = _mm_set1_epi8(b'}' as i8);
        let bs = _mm_set1_epi8(b'\\' as i8);
        let zero = _mm_setzero_si128();
        let mut flags_bs = zero;
        let mut flags_nul = zero;
        let mut flags_hi = zero;
        while i + 16 <= bytes.len() {
            // SAFETY: `i >= 1` and `i + 16 <= len`.
            let v = unsafe { _mm_loadu_si128(p.add(i) as *const __m128i) };
            let prev = unsafe { _mm_loadu_si128(p.add(i - 1) as *const __m128i) };
            flags_bs = _mm_or_si128(flags_bs, _mm_cmpeq_epi8(v, bs));
            flags_nul = _mm_or_si128(flags_nul, _mm_cmpeq_epi8(v, zero));
            flags_hi = _mm_or_si128(flags_hi, v);
            let n = _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u32;
            if n != 0 {
                shape.lines += n.count_ones() as u64;
                let c = _mm_movemask_epi8(_mm_cmpeq_epi8(prev, close)) as u32;
                let mut bad = n & !c;
                while bad != 0 {
                    suspects.push((i + bad.trailing_zeros() as usize) as u32);
                    bad &= bad - 1;
                }
            }
            i += 16;
        }
        shape.backslash |= _mm_movemask_epi8(flags_bs) != 0;
        shape.nul |= _mm_movemask_epi8(flags_nul) != 0;
        shape.non_ascii |= _mm_movemask_epi8(flags_hi) != 0;
        i
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    /// The SIMD passes agree with a plain loop on every length and alignment.
    #[test]
    fn an_anchor_is_found_where_its_bytes_are() {
        let hay = b"xx\"error_code\":\"NO\"error_codf\":\"error_code\":\"";
        for n in 2..=19 {
            let needle = &b"\"error_code\":\"....."[..n];
            let a = Anchor::new(needle).unwrap();
            for pos in 0..hay.len() + 2 {
                let want = hay.get(pos..pos + n) == Some(needle);
                assert_eq!(a.at(hay, pos), want, "{n} at {pos}");
            }
        }
    }

    #[test]
    fn an_anchor_drops_a_key_whose_value_no_rule_wants() {
        let mut first = [false; 256];
        first[b'O' as usize] = true;
        let a = Anchor::new(b"error_code")
            .unwrap()
            .with_unwanted_values(first);
        let line = br#"{"error_code":"OK","x":1} {"error_code":"NO"} {"error_code": "OK"} \"error_code\":\"OK\" error_code=OK {"error_code":"O"#;
        let hits: Vec<usize> = (0..line.len())
            .filter(|&p| a.at(line, p) && !a.unwanted_at(line, p))
            .collect();
        let all: Vec<usize> = (0..line.len()).filter(|&p| a.at(line, p)).collect();
        // Only the plainly spelled `"error_code":"O…` ones are dropped (the first and last).
        assert_eq!(all.len(), 6);
        assert_eq!(hits, all[1..5].to_vec());
    }

    #[test]
    fn shape_scan_agrees_with_a_plain_loop() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        // Alphabets without one of the flagged bytes, so that long inputs also show each flag
        // unset (the vector passes keep them per run of steps).
        let alphabets: [&[u8]; 4] = [
            b"{}\n\n\\ab\"x\x00\xc3",
            b"{}\n\n\\ab\"x\xc3",
            b"{}\n\nab\"x\x00\xc3",
            b"{}\n\n\\ab\"x\x00",
        ];
        for simd in Simd::available() {
            for len in (0..300).chain([1500, 4000, 9000]) {
                for round in 0..20 {
                    let alphabet = alphabets[round % alphabets.len()];
                    let mut v: Vec<u8> = (0..len)
                        .map(|_| {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            alphabet[(rng % alphabet.len() as u64) as usize]
                        })
                        .collect();
                    v.push(b'\n');
                    let mut got = Vec::new();
                    let mut hits = Vec::new();
                    let mut marks = Vec::new();
                    let anchor = Anchor::new(b"b\"x").unwrap();
                    let shape =
                        shape_scan_with(simd, &v, &mut got, Some(&anchor), &mut hits, &mut marks);
                    // Every mark counts the newlines before it; about one per KiB.
                    for w in marks.windows(2) {
                        assert!(w[0].0 < w[1].0, "{simd:?}");
                    }
                    for &(at, n) in &marks {
                        let want = v[..at as usize].iter().filter(|&&b| b == b'\n').count();
                        assert_eq!(n as usize, want, "{simd:?} mark at {at}");
                    }
                    if matches!(simd, Simd::Avx512 | Simd::Avx2) && len >= 4000 {
                        assert!(marks.len() >= len / 1024, "{simd:?} {}", marks.len());
                    }
                    let want_hits: Vec<u32> = (0..v.len().saturating_sub(2))
                        .filter(|&k| &v[k..k + 3] == b"b\"x")
                        .map(|k| k as u32)
                        .collect();
                    assert_eq!(hits, want_hits, "{simd:?} {v:?}");
                    let mut got2 = Vec::new();
                    assert_eq!(
                        shape_scan_with(simd, &v, &mut got2, None, &mut hits, &mut marks),
                        shape
                    );
                    assert_eq!(got2, got);
                    // A needle that overlaps itself: every occurrence.
                    let nn = Anchor::new(b"\n\n").unwrap();
                    shape_scan_with(simd, &v, &mut got2, Some(&nn), &mut hits, &mut marks);
                    let want: Vec<u32> = (0..v.len().saturating_sub(1))
                        .filter(|&k| &v[k..k + 2] == b"\n\n")
                        .map(|k| k as u32)
                        .collect();
                    assert_eq!(hits, want, "{simd:?} {v:?}");
                    let mut want = Vec::new();
                    let mut lines = 0;
                    for (j, &b) in v.iter().enumerate() {
                        if b == b'\n' {
                            lines += 1;
                            if j == 0 || v[j - 1] != b'}' {
                                want.push(j as u32);
                            }
                        }
                    }
                    assert_eq!(shape.lines, lines);
                    assert_eq!(got, want, "{simd:?} {v:?}");
                    assert_eq!(shape.nul, v.contains(&0));
                    assert_eq!(shape.backslash, v.contains(&b'\\'));
                    assert_eq!(shape.non_ascii, v.iter().any(|&b| b >= 0x80));
                }
            }
        }
    }
}

enum RawLine {
    Line {
        start: usize,
        end: usize,
        line: u64,
        end_offset: u64,
        terminated: bool,
    },
    TooLong {
        line: u64,
        len: u64,
        end_offset: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Collects items as strings: `L<line>:<text>`, `TOO_LONG@<line>:<len>`, `BAD@<line>`.
    fn collect(data: &[u8], framing: Framing, cap: usize, block_reads: usize) -> Vec<String> {
        let src = SlowReader {
            inner: Cursor::new(data.to_vec()),
            max: block_reads,
        };
        let mut r = RecordReader::new(src, framing, cap);
        let mut out = Vec::new();
        while let Some(item) = r.next_item().unwrap() {
            out.push(match item {
                Item::Record(rec, meta) => {
                    let mut s = format!("L{}:{}", rec.line, String::from_utf8_lossy(rec.bytes));
                    if let Some(st) = meta.stream {
                        s.push_str(&format!(" [{st}]"));
                    }
                    if !rec.terminated {
                        s.push_str(" (unterminated)");
                    }
                    s
                }
                Item::TooLong { line, len, .. } => format!("TOO_LONG@{line}:{len}"),
                Item::Malformed { line, .. } => format!("BAD@{line}"),
            });
        }
        out
    }

    /// A reader that returns at most `max` bytes per call, to exercise buffer boundaries.
    struct SlowReader {
        inner: Cursor<Vec<u8>>,
        max: usize,
    }
    impl Read for SlowReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.max);
            self.inner.read(&mut buf[..n])
        }
    }

    #[test]
    fn streams_shorter_than_a_bom_are_cut_at_their_newlines() {
        for block in [1, 4096] {
            assert_eq!(collect(b"d\n", Framing::Lines, 1024, block), ["L1:d"]);
            assert_eq!(collect(b"\n", Framing::Lines, 1024, block), ["L1:"]);
        }
    }

    #[test]
    fn lines_crlf_bom_and_unterminated_last_line() {
        for block in [1, 3, 7, 4096] {
            let got = collect(b"\xEF\xBB\xBFa\r\nb\n\nc", Framing::Lines, 1024, block);
            assert_eq!(
                got,
                ["L1:a", "L2:b", "L3:", "L4:c (unterminated)"],
                "block {block}"
            );
        }
    }

    #[test]
    fn over_long_lines_are_skipped_with_bounded_memory() {
        let mut data = b"short\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend(b"\nafter\n");
        data.extend(std::iter::repeat_n(b'y', 3000));
        for block in [7, 100, 100_000] {
            let got = collect(&data, Framing::Lines, 1024, block);
            assert_eq!(
                got,
                ["L1:short", "TOO_LONG@2:5000", "L3:after", "TOO_LONG@4:3000"],
                "block {block}"
            );
        }
    }

    #[test]
    fn json_array_elements_span_lines() {
        let data = b"[\n  {\n    \"a\": \"x,]}\\\"\",\n    \"b\": [1, 2]\n  },\n  {\"c\": {}}\n]\n";
        for block in [1, 5, 4096] {
            let got = collect(data, Framing::JsonArray, 1024, block);
            assert_eq!(
                got,
                [
                    "L2:{\n    \"a\": \"x,]}\\\"\",\n    \"b\": [1, 2]\n  }",
                    "L6:{\"c\": {}}"
                ],
                "block {block}"
            );
        }
    }

    #[test]
    fn truncated_json_array_is_reported() {
        let got = collect(b"[{\"a\":1},\n{\"b\":", Framing::JsonArray, 1024, 4096);
        assert_eq!(got, ["L1:{\"a\":1}", "BAD@2"]);
        assert!(collect(b"", Framing::JsonArray, 1024, 10).is_empty());
    }

    #[test]
    fn cri_partials_are_joined() {
        let data = b"2025-09-08T19:01:46.1Z stdout P {\"a\":\n2025-09-08T19:01:46.2Z stdout F 1}\n2025-09-08T19:01:47Z stderr F plain\n";
        let got = collect(data, Framing::Cri, 1024, 5);
        assert_eq!(got, ["L1:{\"a\":1} [stdout]", "L3:plain [stderr]"]);
    }

    #[test]
    fn sniffing() {
        assert_eq!(Framing::sniff(b"[\n {\"a\":1}]"), Framing::JsonArray);
        assert_eq!(Framing::sniff(b"[INFO] started"), Framing::Lines);
        assert_eq!(Framing::sniff(b"{\"a\":1}\n"), Framing::Lines);
        assert_eq!(
            Framing::sniff(b"2025-09-08T19:01:46Z stdout F x\n"),
            Framing::Cri
        );
    }

    /// Counts the bytes read through it.
    struct Counting<'a> {
        inner: Cursor<&'a [u8]>,
        read: &'a std::cell::Cell<u64>,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_chunk_inside_one_long_line_reads_nothing_past_its_end() {
        // One line of 8 MiB (over the cap), then a short one, cut into 1 MiB chunks.
        let mut data = vec![b'x'; 8 << 20];
        data.extend(b"\nshort\n");
        let size = data.len() as u64;
        let chunk = 1u64 << 20;
        let mut items = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + chunk).min(size);
            let read = std::cell::Cell::new(0);
            let mut inner = Cursor::new(data.as_slice());
            inner.set_position(start.saturating_sub(1));
            let src = Counting { inner, read: &read };
            let mut r = RecordReader::chunk(src, 1024, start, end).unwrap();
            while let Some(item) = r.next_item().unwrap() {
                items.push(match item {
                    Item::Record(rec, _) => String::from_utf8_lossy(rec.bytes).into_owned(),
                    Item::TooLong { len, .. } => format!("too long: {len}"),
                    Item::Malformed { message, .. } => message,
                });
            }
            if start > 0 && end < size - 7 {
                // A chunk that starts and ends inside the long line reads its own bytes (and
                // a block more at most), not the rest of the line.
                assert!(
                    read.get() <= chunk + BLOCK as u64,
                    "chunk at {start} read {}",
                    read.get()
                );
            }
            start = end;
        }
        assert_eq!(
            items,
            [format!("too long: {}", 8 << 20), "short".to_string()]
        );
    }

    /// Every item of a chunked reading, with line numbers made global.
    fn chunk_items(
        size: u64,
        chunk: u64,
        mut open: impl FnMut(u64, u64) -> RecordReader<File>,
    ) -> Vec<String> {
        let mut got = Vec::new();
        let mut line_base = 0;
        let mut start = 0;
        while start < size {
            let end = (start + chunk).min(size);
            let mut r = open(start, end);
            while let Some(item) = r.next_item().unwrap() {
                got.push(match item {
                    Item::Record(rec, _) => format!(
                        "L{}:{}{}",
                        rec.line + line_base,
                        String::from_utf8_lossy(rec.bytes),
                        if rec.terminated {
                            ""
                        } else {
                            " (unterminated)"
                        }
                    ),
                    Item::TooLong { line, len, .. } => {
                        format!("L{}: too long {len}", line + line_base)
                    }
                    Item::Malformed { message, .. } => message,
                });
            }
            line_base += r.lines_seen();
            start = end;
        }
        got
    }

    #[test]
    fn mapped_chunks_read_what_read_chunks_read() {
        let dir = tempfile::tempdir().unwrap();
        // Small chunks over short lines; large ones over a line longer than the cap and than a
        // release window (skipped the same way, its pages handed back on the way).
        let cases: [(usize, Option<usize>, &[u64]); 2] = [
            (300, None, &[7, 100, 4096]),
            (3000, Some(1000), &[65_536, 1 << 20, u64::MAX]),
        ];
        for (n, long_at, chunks) in cases {
            let mut data = Vec::new();
            for i in 0..n {
                data.extend(format!("line-{i}-{}\r\n", "z".repeat(i % 97)).bytes());
                if Some(i) == long_at {
                    data.extend(vec![b'y'; RELEASE + 3 * BLOCK]);
                    data.push(b'\n');
                }
            }
            data.extend(b"last-no-newline");
            let path = dir.path().join(format!("{n}.log"));
            std::fs::write(&path, &data).unwrap();
            let size = data.len() as u64;
            let want = n + 1 + usize::from(long_at.is_some());
            for &chunk in chunks {
                let chunk = chunk.min(size);
                let read = chunk_items(size, chunk, |start, end| {
                    let mut f = File::open(&path).unwrap();
                    f.seek(SeekFrom::Start(start.saturating_sub(1))).unwrap();
                    RecordReader::chunk(f, 1024, start, end).unwrap()
                });
                let mapped = chunk_items(size, chunk, |start, end| {
                    let f = File::open(&path).unwrap();
                    let r = RecordReader::mapped_chunk(f, 1024, start, end).unwrap();
                    assert!(
                        matches!(r.buf, Buf::Mapped { .. }),
                        "{start}..{end} not mapped"
                    );
                    r
                });
                assert_eq!(mapped, read, "{n} lines, chunk size {chunk}");
                assert_eq!(read.len(), want, "{n} lines, chunk size {chunk}");
            }
        }
    }

    #[test]
    fn an_empty_mapped_range_falls_back_to_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.log");
        std::fs::write(&path, b"").unwrap();
        let mut r = RecordReader::mapped_chunk(File::open(&path).unwrap(), 1024, 0, 0).unwrap();
        assert!(matches!(r.buf, Buf::Owned(_)));
        assert!(r.next_item().unwrap().is_none());
    }

    #[test]
    fn chunks_partition_the_lines_exactly() {
        let mut data = Vec::new();
        for i in 0..500 {
            data.extend(format!("line-{i}-{}\n", "z".repeat(i % 37)).bytes());
        }
        data.extend(b"last-no-newline");
        let whole = collect(&data, Framing::Lines, 1024, 4096);
        for chunk in [1u64, 2, 17, 100, 999, 5000] {
            let mut got = Vec::new();
            let mut line_base = 0;
            let size = data.len() as u64;
            let mut start = 0;
            while start < size {
                let end = (start + chunk).min(size);
                let mut cur = Cursor::new(data.clone());
                cur.set_position(start.saturating_sub(1));
                let mut r = RecordReader::chunk(cur, 1024, start, end).unwrap();
                while let Some(item) = r.next_item().unwrap() {
                    if let Item::Record(rec, _) = item {
                        let mut s = format!(
                            "L{}:{}",
                            rec.line + line_base,
                            String::from_utf8_lossy(rec.bytes)
                        );
                        if !rec.terminated {
                            s.push_str(" (unterminated)");
                        }
                        got.push(s);
                    }
                }
                line_base += r.lines_seen();
                start = end;
            }
            assert_eq!(got, whole, "chunk size {chunk}");
        }
    }
}
