//! Opening inputs: compression is detected by magic bytes, never by file name, because exports
//! and rotated logs are named inconsistently (`app.log.1.gz`, `export-0001`, …).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use super::Input;

/// Compression of an input, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Tells the compression from the first bytes of a stream.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// An opened input: the decompressed byte stream.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub compression: Compression,
}

/// Opens `input` and wraps it in the right decompressor.
pub fn open(input: &Input) -> io::Result<Opened> {
    match input {
        Input::Stdin => wrap(Box::new(io::stdin())),
        Input::File(p) => wrap(Box::new(File::open(p)?)),
    }
}

/// Wraps a raw stream in the decompressor its magic bytes call for.
pub fn wrap(raw: Box<dyn Read + Send>) -> io::Result<Opened> {
    // A small buffer just to peek at the magic bytes; the framing layer reads in large blocks.
    let mut buf = BufReader::with_capacity(64 * 1024, raw);
    let head = buf.fill_buf()?;
    let compression = sniff(head);
    let reader: Box<dyn Read + Send> = match compression {
        // MultiGzDecoder: `cat a.gz b.gz` and many log shippers write multi-member gzip.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
        Compression::None => Box::new(buf),
    };
    Ok(Opened {
        reader,
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(bytes: Vec<u8>) -> (Compression, io::Result<Vec<u8>>) {
        let mut o = wrap(Box::new(io::Cursor::new(bytes))).unwrap();
        let mut out = Vec::new();
        let r = o.reader.read_to_end(&mut out).map(|_| out);
        (o.compression, r)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn multi_member_gzip() {
        let mut bytes = gz(b"a\n");
        bytes.extend(gz(b"b\n"));
        let (c, r) = read_all(bytes);
        assert_eq!(c, Compression::Gzip);
        assert_eq!(r.unwrap(), b"a\nb\n");
    }

    #[test]
    fn zstd_and_plain() {
        let z = zstd::encode_all(&b"z\n"[..], 1).unwrap();
        let (c, r) = read_all(z);
        assert_eq!(c, Compression::Zstd);
        assert_eq!(r.unwrap(), b"z\n");
        let (c, r) = read_all(b"plain\n".to_vec());
        assert_eq!(c, Compression::None);
        assert_eq!(r.unwrap(), b"plain\n");
    }

    #[test]
    fn truncated_gzip_is_an_error_after_the_good_part() {
        let bytes = gz(&b"line\n".repeat(10_000));
        let cut = bytes[..bytes.len() / 2].to_vec();
        let (_, r) = read_all(cut);
        assert!(r.is_err());
    }
}
