//! Work units for parallel reading.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::expand::describe_io;
use super::framing::{Framing, RecordReader};
use super::open::{Compression, sniff};
use super::{Input, SourceError};

/// One piece of work: a whole input, or one chunk of a large plain file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkUnit {
    /// Index of the input in the expanded, sorted input list.
    pub input: usize,
    /// Index of the chunk within the input (0 for whole inputs).
    pub chunk: usize,
    /// Byte range for chunked plain files.
    pub range: Option<(u64, u64)>,
}

/// Splits inputs into units. A plain (uncompressed) line-framed file bigger than
/// `chunk_bytes * 3 / 2` is cut into chunks of about `chunk_bytes`, so that one big export is
/// read by all threads; compressed streams, JSON arrays and CRI logs cannot be entered in the
/// middle and stay whole. Files that cannot be opened are reported here, before any work.
pub fn plan_units(inputs: &[Input], chunk_bytes: u64) -> (Vec<WorkUnit>, Vec<SourceError>) {
    let mut units = Vec::new();
    let mut errors = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let Input::File(path) = input else {
            units.push(WorkUnit {
                input: i,
                chunk: 0,
                range: None,
            });
            continue;
        };
        let probe = (|| -> std::io::Result<(u64, Vec<u8>)> {
            let mut f = std::fs::File::open(path)?;
            let size = f.metadata()?.len();
            let mut head = vec![0u8; 4096];
            let n = read_up_to(&mut f, &mut head)?;
            head.truncate(n);
            Ok((size, head))
        })();
        match probe {
            Ok((size, head)) => {
                let chunkable = sniff(&head) == Compression::None
                    && Framing::sniff(&head) == Framing::Lines
                    && chunk_bytes > 0
                    && size > chunk_bytes + chunk_bytes / 2;
                if chunkable {
                    let n = size.div_ceil(chunk_bytes);
                    for c in 0..n {
                        let start = c * chunk_bytes;
                        let end = ((c + 1) * chunk_bytes).min(size);
                        units.push(WorkUnit {
                            input: i,
                            chunk: c as usize,
                            range: Some((start, end)),
                        });
                    }
                } else {
                    units.push(WorkUnit {
                        input: i,
                        chunk: 0,
                        range: None,
                    });
                }
            }
            Err(e) => errors.push(SourceError {
                path: input.display_name(),
                line: None,
                message: describe_io(&e),
            }),
        }
    }
    (units, errors)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// How long a file must have been left alone before its chunks are memory-mapped. A file that
/// is truncated while mapped kills the reader with SIGBUS, and the file that gets truncated is
/// one being written (logrotate's copytruncate); an export at rest is safe to map.
pub const MAP_QUIET: Duration = Duration::from_secs(10);

/// The reader of one chunk (`start..end`) of a plain file: over a memory map when `mmap` allows
/// it and the file has not been modified for [`MAP_QUIET`] (no copy), else reading it.
pub fn open_chunk(
    path: &Path,
    max_line: usize,
    (start, end): (u64, u64),
    mmap: bool,
) -> io::Result<RecordReader<File>> {
    let mut f = File::open(path)?;
    if mmap && at_rest(&f) {
        return RecordReader::mapped_chunk(f, max_line, start, end);
    }
    f.seek(SeekFrom::Start(start.saturating_sub(1)))?;
    RecordReader::chunk(f, max_line, start, end)
}

/// Whether a file was last modified at least [`MAP_QUIET`] ago (a modification time in the
/// future, or none, is not at rest).
fn at_rest(f: &File) -> bool {
    f.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= MAP_QUIET)
}

#[cfg(test)]
mod map_tests {
    use super::*;

    #[test]
    fn only_files_left_alone_are_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"x\n").unwrap();
        let f = File::options().write(true).open(&path).unwrap();
        assert!(!at_rest(&f), "just written");
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        assert!(at_rest(&f), "an hour old");
        f.set_modified(SystemTime::now() + Duration::from_secs(3600))
            .unwrap();
        assert!(!at_rest(&f), "modified in the future");
    }
}
