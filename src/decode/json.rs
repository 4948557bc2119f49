//! Plain JSON objects.

use serde_json::{Map, Value};

use super::detect::Body;
use super::{DecodeConfig, DecodeError, Format, time_from_fields};

/// Parses a whole line as one JSON object.
///
/// serde_json's `Map` keeps the last of duplicate keys (as most JSON parsers do, and as the
/// prefilter assumes), decodes `\u` escapes, refuses trailing garbage and limits nesting depth
/// (128), so hostile input cannot overflow the stack. The error text is serde's, with line and
/// column.
pub fn parse_object(line: &str) -> Result<Map<String, Value>, DecodeError> {
    serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))
}

/// The body of a plain JSON object: its fields as they are, its time from the configured fields.
pub(crate) fn body(fields: Map<String, Value>, cfg: &DecodeConfig) -> Body {
    Body {
        time: time_from_fields(&fields, cfg),
        fields,
        format: Format::Json,
    }
}

/// The top-level keys a projected decode keeps (see [`super::decode_keeping`]).
///
/// Asked about every key of every candidate record (a dozen per record, 163,000 records per
/// GB at a 5% match rate), so looked up by length first: most keys of a record have a length
/// no kept key has and are answered by one bit test, the others by comparing the few kept
/// keys of that length (a hash set spent more hashing them), first and last eight bytes as two
/// words (a call to `memcmp` per key compared was a tenth of decoding a candidate).
///
/// Each kept key also says what it is for ([`Role`]), so that the fast path can tell, from the
/// keys it met, that a record has no envelope and no id without looking them up afterwards.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// Bit `n` is set when a kept key is `n` bytes long (`n` < 64).
    lengths: u64,
    /// The kept keys, sorted by length then bytes.
    keys: Vec<Box<str>>,
    /// The first and last eight bytes of each key (see [`words`]).
    words: Vec<(u64, u64)>,
    /// What each key is for: [`Role`] bits.
    roles: Vec<u8>,
    /// `keys[from[n]..from[n + 1]]` are the kept keys of `n` bytes (`n` < 64).
    from: Vec<u16>,
    /// Whether a rule reads `_line`, the record's text.
    line: bool,
    /// The id fields marked with [`Role::ID`] ([`Keep::with_ids`]); `None`: not marked.
    ids: Option<Vec<String>>,
}

/// What a kept key is for, as bits.
pub struct Role;

impl Role {
    /// A key whose presence can make a record an envelope (GCP's payloads, Docker's `log`).
    pub const SHAPES: u8 = 1;
    /// One of the configured id fields.
    pub const ID: u8 = 2;
    /// Every kind: what a decoder that cannot tell must assume.
    pub const ANY: u8 = Role::SHAPES | Role::ID;
}

/// The keys that can make an object an envelope: a GCP entry has a payload, a Docker entry
/// `log` (see [`super::envelope`]).
const SHAPING_KEYS: [&str; 4] = ["jsonPayload", "textPayload", "protoPayload", "log"];

/// A key's first eight bytes and last eight (zero-padded when shorter): for keys of the same
/// length up to 16 bytes, equal words mean equal keys.
#[inline]
fn words(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    if n >= 8 {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        (word(0), word(n - 8))
    } else {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(b);
        (u64::from_le_bytes(w), 0)
    }
}

impl Keep {
    /// The envelope keys, and the first key (and the whole dotted name: a flat key wins) of
    /// every path given.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a [String]>) -> Keep {
        let mut keys: Vec<Box<str>> = super::envelope::ENVELOPE_KEYS
            .iter()
            .map(|k| (*k).into())
            .collect();
        for path in paths {
            if let Some(first) = path.first() {
                keys.push(first.as_str().into());
                keys.push(path.join(".").into());
            }
        }
        keys.sort_unstable_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        keys.dedup();
        let lengths = keys
            .iter()
            .filter(|k| k.len() < 64)
            .fold(0u64, |m, k| m | 1 << k.len());
        let from = (0..=64)
            .map(|n| keys.partition_point(|k| k.len() < n) as u16)
            .collect();
        let words = keys.iter().map(|k| words(k.as_bytes())).collect();
        let roles = keys
            .iter()
            .map(|k| match SHAPING_KEYS.contains(&&**k) {
                true => Role::SHAPES,
                false => 0,
            })
            .collect();
        Keep {
            lengths,
            keys,
            words,
            roles,
            from,
            line: false,
            ids: None,
        }
    }

    /// Also keeps the record's text (`_line`).
    pub fn with_line(mut self, line: bool) -> Keep {
        self.line = line;
        self
    }

    /// Marks the kept keys that are one of `ids` (the configured id fields, which must be
    /// kept) with [`Role::ID`]; the decoder then looks for an id only in records that have
    /// such a key (see [`Keep::ids_marked`]).
    pub fn with_ids(mut self, ids: &[String]) -> Keep {
        for (k, role) in self.keys.iter().zip(&mut self.roles) {
            if ids.iter().any(|id| **id == **k) {
                *role |= Role::ID;
            }
        }
        self.ids = Some(ids.to_vec());
        self
    }

    /// Whether [`Role::ID`] marks exactly the keys of these id fields.
    pub fn ids_marked(&self, ids: &[String]) -> bool {
        self.ids.as_deref() == Some(ids)
    }

    /// Whether [`Keep::with_ids`] marked the id fields' keys.
    pub fn ids_known(&self) -> bool {
        self.ids.is_some()
    }

    /// The [`Role`] bits every record must be assumed to have: [`Role::ID`] while the id
    /// fields' keys are not marked (any record may then hold an id).
    fn assumed(&self) -> u8 {
        if self.ids_known() { 0 } else { Role::ID }
    }

    pub fn line(&self) -> bool {
        self.line
    }

    #[inline]
    pub fn contains(&self, key: &str) -> bool {
        self.role(key).is_some()
    }

    /// What `key` is kept for ([`Role`] bits; 0 for a key kept only for rules), or `None` when
    /// it is not kept.
    #[inline]
    pub fn role(&self, key: &str) -> Option<u8> {
        let n = key.len();
        if n < 64 {
            if self.lengths & (1 << n) == 0 {
                return None;
            }
            let w = words(key.as_bytes());
            let (a, b) = (self.from[n] as usize, self.from[n + 1] as usize);
            return (a..b)
                .find(|&j| self.words[j] == w && (n <= 16 || *self.keys[j] == *key))
                .map(|j| self.roles[j]);
        }
        let j = self.keys.iter().position(|k| **k == *key)?;
        Some(self.roles[j])
    }
}

/// A line's quotes, as bits 64 bytes a word, and whether it holds control bytes (see
/// [`parse_flat_keeping`]).
struct LineMarks {
    quotes: [u64; LineMarks::WORDS],
    control: bool,
}

impl LineMarks {
    /// Lines up to 64 × this many bytes are marked; the fast path leaves longer ones to serde.
    const WORDS: usize = 16;

    /// `None` for a line too long, or with a backslash.
    fn of(b: &[u8]) -> Option<LineMarks> {
        if b.len() > 64 * Self::WORDS {
            return None;
        }
        let mut marks = LineMarks {
            quotes: [0; Self::WORDS],
            control: false,
        };
        let (mut backslash, mut control) = (0u64, 0u64);
        // The last, short piece padded with spaces.
        let mut pad = [b' '; 64];
        for (w, piece) in b.chunks(64).enumerate() {
            let piece: &[u8; 64] = match piece.try_into() {
                Ok(whole) => whole,
                Err(_) => {
                    pad[..piece.len()].copy_from_slice(piece);
                    &pad
                }
            };
            let (q, bs, ctl) = piece_bits(piece);
            marks.quotes[w] = q;
            backslash |= bs;
            control |= ctl;
        }
        marks.control = control != 0;
        (backslash == 0).then_some(marks)
    }

    /// The first quote at or after `i`.
    #[inline]
    fn next_quote(&self, i: usize) -> Option<usize> {
        let mut w = i / 64;
        let mut m = *self.quotes.get(w)? & (!0u64 << (i % 64));
        while m == 0 {
            w += 1;
            m = *self.quotes.get(w)?;
        }
        Some(w * 64 + m.trailing_zeros() as usize)
    }
}

/// Bits of a 64-byte piece: its quotes, its backslashes, its control bytes (below 0x20).
#[inline]
fn piece_bits(piece: &[u8; 64]) -> (u64, u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let (mut q, mut bs, mut ctl) = (0u64, 0u64, 0u64);
        // SAFETY: SSE2 is part of x86-64; every load reads 16 bytes of the 64.
        unsafe {
            let (quote, slash) = (_mm_set1_epi8(b'"' as i8), _mm_set1_epi8(b'\\' as i8));
            // `c < 0x20` as unsigned bytes: `max(c, 0x1f) == 0x1f`.
            let below = _mm_set1_epi8(0x1f);
            for k in 0..4 {
                let v = _mm_loadu_si128(piece.as_ptr().add(16 * k) as *const __m128i);
                let bit = |m: __m128i| (_mm_movemask_epi8(m) as u16 as u64) << (16 * k);
                q |= bit(_mm_cmpeq_epi8(v, quote));
                bs |= bit(_mm_cmpeq_epi8(v, slash));
                ctl |= bit(_mm_cmpeq_epi8(_mm_max_epu8(v, below), below));
            }
        }
        (q, bs, ctl)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        piece
            .iter()
            .enumerate()
            .fold((0, 0, 0), |(q, bs, ctl), (j, &c)| {
                (
                    q | u64::from(c == b'"') << j,
                    bs | u64::from(c == b'\\') << j,
                    ctl | u64::from(c < 0x20) << j,
                )
            })
    }
}

/// What the fast path met in a record besides its kept fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Some field was left out.
    pub dropped: bool,
    /// The [`Role`] bits of the kept keys met, and those the projection assumes (see
    /// [`Keep::with_ids`]).
    pub roles: u8,
}

/// [`parse_object_keeping`] for the usual candidate, without serde: one flat object whose
/// values are strings without escapes or control characters, integers or plain decimals,
/// booleans or null. `None` for any other line (a nested value, an escape, an exponent,
/// anything invalid), which then goes to serde, so what is valid and what a record decodes to
/// stay serde's; this path only answers where the two cannot differ. Serde's visitor was
/// half of what a candidate cost at a 5% match rate.
pub fn parse_flat_keeping(line: &str, keep: &Keep) -> Option<(Map<String, Value>, Seen)> {
    let b = line.as_bytes();
    let ws = |mut i: usize| {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    };
    // One look at the whole line first: a backslash can only be in a string, where the fast
    // path does not take it (an escape), and without control bytes no string can hold one;
    // the line's quotes as bits then find each string's end (searching from every string
    // for its end, and checking its bytes one by one, was most of this function's time).
    let marks = LineMarks::of(b)?;
    // The contents of a string opening at `i` (after its quote), and where its closing
    // quote is.
    let string = |i: usize| -> Option<(usize, usize)> {
        let end = marks.next_quote(i)?;
        (!marks.control || !b[i..end].iter().any(|&c| c < 0x20)).then_some((i, end))
    };
    // The end of a number at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most 18 digits on
    // either side (exactly representable as serde reads it; an exponent goes to serde).
    let number = |mut i: usize| -> Option<usize> {
        let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let n = digits(i);
        if n == 0 || n > 18 || (n > 1 && b[i] == b'0') {
            return None;
        }
        i += n;
        if b.get(i) == Some(&b'.') {
            let f = digits(i + 1);
            if f == 0 || f > 18 {
                return None;
            }
            i += 1 + f;
        }
        (!matches!(b.get(i), Some(b'e' | b'E'))).then_some(i)
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut map = Map::new();
    let mut dropped = false;
    let mut roles = keep.assumed();
    i = ws(i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (ks, ke) = string(i + 1)?;
            i = ws(ke + 1);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(i + 1);
            let key = &line[ks..ke];
            let role = keep.role(key);
            roles |= role.unwrap_or(0);
            let kept = role.is_some();
            let (value, end) = match *b.get(i)? {
                b'"' => {
                    let (s, e) = string(i + 1)?;
                    (kept.then(|| Value::String(line[s..e].to_owned())), e + 1)
                }
                b't' if b[i..].starts_with(b"true") => (kept.then_some(Value::Bool(true)), i + 4),
                b'f' if b[i..].starts_with(b"false") => (kept.then_some(Value::Bool(false)), i + 5),
                b'n' if b[i..].starts_with(b"null") => (kept.then_some(Value::Null), i + 4),
                b'-' | b'0'..=b'9' => {
                    let e = number(i)?;
                    let v = match kept {
                        true => Some(Value::Number(line[i..e].parse().ok()?)),
                        false => None,
                    };
                    (v, e)
                }
                _ => return None,
            };
            match value {
                Some(v) => {
                    map.insert(key.to_owned(), v);
                }
                None => dropped = true,
            }
            i = ws(end);
            match b.get(i) {
                Some(b',') => i = ws(i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (ws(i) == b.len()).then_some((map, Seen { dropped, roles }))
}

/// [`parse_object`], building only the fields in `keep`; returns whether any was left out.
/// The rest is still parsed (checked, escapes and all), so what is valid is the same, and
/// duplicate keys still resolve to the last.
pub fn parse_object_keeping(
    line: &str,
    keep: &Keep,
) -> Result<(Map<String, Value>, bool), DecodeError> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;

    /// A key, borrowed from the line when it has no escape.
    struct Key<'a>(Cow<'a, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_owned())))
                }
            }
            d.deserialize_str(V)
        }
    }
    /// A value parsed as a [`Value`] would be (escapes decoded and checked: a lone surrogate
    /// is an error here as there), and dropped: serde's `IgnoredAny` does not check escapes,
    /// so a record invalid whole would have been valid projected.
    struct Skip;
    impl<'de> serde::Deserialize<'de> for Skip {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Skip;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                    Ok(Skip)
                }
                fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                    Ok(Skip)
                }
                fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                    Ok(Skip)
                }
                fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                    Ok(Skip)
                }
                fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                    Ok(Skip)
                }
                fn visit_unit<E>(self) -> Result<Skip, E> {
                    Ok(Skip)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Skip, A::Error> {
                    while a.next_element::<Skip>()?.is_some() {}
                    Ok(Skip)
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Skip, A::Error> {
                    while a.next_entry::<Skip, Skip>()?.is_some() {}
                    Ok(Skip)
                }
            }
            d.deserialize_any(V)
        }
    }
    struct Keeping<'k> {
        keep: &'k Keep,
        dropped: bool,
    }
    impl<'de> Visitor<'de> for &mut Keeping<'_> {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut m = Map::new();
            while let Some(Key(k)) = a.next_key::<Key<'de>>()? {
                if self.keep.contains(&k) {
                    let v: Value = a.next_value()?;
                    m.insert(k.into_owned(), v);
                } else {
                    a.next_value::<Skip>()?;
                    self.dropped = true;
                }
            }
            Ok(m)
        }
    }
    impl<'de> DeserializeSeed<'de> for &mut Keeping<'_> {
        type Value = Map<String, Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let json = |e: serde_json::Error| DecodeError::Json(e.to_string());
    let mut de = serde_json::Deserializer::from_str(line);
    let mut seed = Keeping {
        keep,
        dropped: false,
    };
    let map = (&mut seed).deserialize(&mut de).map_err(json)?;
    de.end().map_err(json)?;
    Ok((map, seed.dropped))
}

#[cfg(test)]
mod marks_tests {
    use super::*;

    /// The marks of a line agree with a plain loop over its bytes, at every length around the
    /// 64-byte pieces and past the longest marked line.
    #[test]
    fn line_marks_agree_with_a_plain_loop() {
        let alphabet = b"\"\"ab \\\x01\x1f\x20\x7f\x80\xc3\xff{}:,";
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for len in (0..200).chain([255, 256, 257, 1023, 1024, 1025, 1500]) {
            for _ in 0..20 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        alphabet[(rng % alphabet.len() as u64) as usize]
                    })
                    // Half the lines without a backslash, so that most are marked.
                    .map(|c| if len % 2 == 0 && c == b'\\' { b'x' } else { c })
                    .collect();
                let marks = LineMarks::of(&b);
                let marked = len <= 64 * LineMarks::WORDS && !b.contains(&b'\\');
                assert_eq!(marks.is_some(), marked, "{b:?}");
                let Some(marks) = marks else { continue };
                assert_eq!(marks.control, b.iter().any(|&c| c < 0x20), "{b:?}");
                for i in 0..=len {
                    let want = (i..len).find(|&j| b[j] == b'"');
                    assert_eq!(marks.next_quote(i), want, "{i} in {b:?}");
                }
            }
        }
    }
}
