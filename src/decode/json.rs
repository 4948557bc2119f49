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
/// keys of that length (a hash set spent more hashing them).
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// Bit `n` is set when a kept key is `n` bytes long (`n` < 64).
    lengths: u64,
    /// The kept keys, sorted by length then bytes.
    keys: Vec<Box<str>>,
    /// Whether a rule reads `_line`, the record's text.
    line: bool,
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
        Keep {
            lengths,
            keys,
            line: false,
        }
    }

    /// Also keeps the record's text (`_line`).
    pub fn with_line(mut self, line: bool) -> Keep {
        self.line = line;
        self
    }

    pub fn line(&self) -> bool {
        self.line
    }

    pub fn contains(&self, key: &str) -> bool {
        if key.len() < 64 && self.lengths & (1 << key.len()) == 0 {
            return false;
        }
        let from = self.keys.partition_point(|k| k.len() < key.len());
        self.keys[from..]
            .iter()
            .take_while(|k| k.len() == key.len())
            .any(|k| **k == *key)
    }
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
