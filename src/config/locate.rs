//! Where a value is in a YAML text, for messages. serde_yaml (the
//! `yaml_serde` crate, under its old name) reports positions only in its
//! errors, so a probe walks the document along a path of keys and
//! list indices and fails on purpose at the value sought: the position of that
//! error is the position of the value (of its first character, a quote
//! included), whatever the style — block or flow, quoted or plain, any order
//! of keys, comments anywhere.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// The value of this key of a mapping.
    Key(&'a str),
    /// This element (0-based) of a sequence.
    Index(usize),
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// The text of a configuration file, kept to locate values once they are
/// found wrong. Its `Debug` shows only the length: the text may hold
/// allow-list values.
#[derive(Clone)]
pub(crate) struct SourceText(Arc<str>);

impl SourceText {
    pub(crate) fn new(text: &str) -> SourceText {
        SourceText(Arc::from(text))
    }

    /// Where the value at `path` begins, if the document has one there.
    pub(crate) fn locate(&self, path: &[Step<'_>]) -> Option<Position> {
        locate(&self.0, path)
    }
}

impl fmt::Debug for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceText({} bytes)", self.0.len())
    }
}

/// The message of the probe's deliberate error.
const FOUND: &str = "logredact: the value sought is here";

/// Where the value at `path` in the YAML `text` begins, if there is one.
pub(crate) fn locate(text: &str, path: &[Step<'_>]) -> Option<Position> {
    let probe = Probe { path };
    let error = match probe.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(()) => return None,
        Err(error) => error,
    };
    // The message is prefixed with the path and followed by the position.
    if error.to_string().contains(FOUND) {
        error.location().map(|location| Position {
            line: location.line(),
            column: location.column(),
        })
    } else {
        None
    }
}

/// Follows `path`; fails with [`FOUND`] at its end.
struct Probe<'p> {
    path: &'p [Step<'p>],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Probe<'_> {
    /// At the end of the path, the deliberate error; elsewhere, a scalar
    /// means the path leads nowhere.
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let wanted = match self.path.split_first() {
            None => return Err(de::Error::custom(FOUND)),
            Some((Step::Index(wanted), rest)) => Some((*wanted, rest)),
            Some((Step::Key(_), _)) => None,
        };
        let mut index = 0;
        loop {
            let more = match wanted {
                Some((wanted, rest)) if wanted == index => {
                    seq.next_element_seed(Probe { path: rest })?.is_some()
                }
                _ => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wanted = match self.path.split_first() {
            None => return Err(de::Error::custom(FOUND)),
            Some((Step::Key(wanted), rest)) => Some((*wanted, rest)),
            Some((Step::Index(_), _)) => None,
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            match wanted {
                Some((wanted, rest)) if key.as_str() == Some(wanted) => {
                    map.next_value_seed(Probe { path: rest })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::{Index, Key};

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn finds_values_in_block_and_flow_style() {
        let text = "rules:\n  - id: a\n    pattern: 'x' # comment\n  - {id: \"b\", pattern: y}\n  - pattern: z\n    id: a\nlimits: { max_connections: 0 }\ninputs: []\n";
        assert_eq!(locate(text, &[Key("rules"), Index(0), Key("id")]), at(2, 9));
        assert_eq!(
            locate(text, &[Key("rules"), Index(0), Key("pattern")]),
            at(3, 14)
        );
        assert_eq!(
            locate(text, &[Key("rules"), Index(1), Key("id")]),
            at(4, 10)
        );
        assert_eq!(
            locate(text, &[Key("rules"), Index(1), Key("pattern")]),
            at(4, 24)
        );
        assert_eq!(locate(text, &[Key("rules"), Index(2), Key("id")]), at(6, 9));
        assert_eq!(locate(text, &[Key("rules"), Index(2)]), at(5, 5));
        assert_eq!(
            locate(text, &[Key("limits"), Key("max_connections")]),
            at(7, 28)
        );
        assert_eq!(locate(text, &[Key("inputs")]), at(8, 9));
    }

    #[test]
    fn a_path_that_leads_nowhere_has_no_position() {
        let text = "rules:\n  - id: a\n    pattern: x\n";
        assert_eq!(locate(text, &[Key("rules"), Index(1), Key("id")]), None);
        assert_eq!(locate(text, &[Key("rules"), Index(0), Key("mask")]), None);
        assert_eq!(locate(text, &[Key("rules"), Key("id")]), None);
        assert_eq!(locate(text, &[Key("output")]), None);
        assert_eq!(locate("", &[Key("output")]), None);
    }

    #[test]
    fn source_text_debug_shows_no_content() {
        let text = SourceText::new("allow: [secret]\n");
        assert_eq!(format!("{text:?}"), "SourceText(16 bytes)");
    }
}
