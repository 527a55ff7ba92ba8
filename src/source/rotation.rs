//! The rotated generations of a followed file: the files a rotator (logrotate,
//! a logging library) renamed the followed file to, in the same directory.
//!
//! For a followed `NAME` they are:
//!
//! - `NAME.N`: numbered generations (`NAME.1` is the newest), N of 1 to 6
//!   digits;
//! - `NAME-SUFFIX` and `NAME.SUFFIX` where SUFFIX is made of digits, dashes
//!   and underscores, with at least one digit: dated generations
//!   (logrotate's `dateext`, `-20261122`, `.2026-11-22_1400`). A `.SUFFIX` of
//!   digits only is a date from 7 digits on (`dateformat .%Y%m%d`).
//!
//! An input can name its generations itself (`rotated: 'app-*.log'`, `{name}`
//! standing for NAME): what the `*` matches then ranks them, as a number if
//! it is 1 to 6 digits (higher is older), else as text (later is newer).
//!
//! Anything else is not a generation: a compressed one (`NAME.1.gz`) cannot
//! be followed, and is ignored. Generations are ordered oldest first: dated
//! ones by their suffix (a date format sorts as text in time order), then
//! numbered ones from the highest number down. This is the rotator's own
//! statement of order; modification times are not used, as a copy gets the
//! time of the copy and two generations can share a timestamp. Which of
//! them were read already is decided by their content, not by this order
//! (see `identity`).

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::RotatedNames;

/// Where a generation stands among the others.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rank {
    /// `NAME-SUFFIX` or a dated `NAME.SUFFIX`: later suffixes are newer.
    Dated(Vec<u8>),
    /// `NAME.N`: higher numbers are older.
    Numbered(u64),
}

impl Rank {
    /// Oldest first.
    fn age_order(&self, other: &Rank) -> Ordering {
        match (self, other) {
            (Rank::Dated(a), Rank::Dated(b)) => a.cmp(b),
            (Rank::Numbered(a), Rank::Numbered(b)) => b.cmp(a),
            (Rank::Dated(_), Rank::Numbered(_)) => Ordering::Less,
            (Rank::Numbered(_), Rank::Dated(_)) => Ordering::Greater,
        }
    }
}

/// Endings of compressed files, never generations to read.
pub const COMPRESSED: [&str; 4] = [".gz", ".bz2", ".xz", ".zst"];

/// The rank of the file `candidate` as a generation of `live`, if it is one.
fn rank(live: &[u8], candidate: &[u8], names: &RotatedNames) -> Option<Rank> {
    match names {
        RotatedNames::Builtin => builtin_rank(live, candidate),
        RotatedNames::Pattern { before, after } => {
            if COMPRESSED
                .iter()
                .any(|ending| candidate.ends_with(ending.as_bytes()))
            {
                return None;
            }
            let name = |text: &str| -> Vec<u8> {
                let mut out = Vec::new();
                let mut parts = text.split("{name}");
                out.extend_from_slice(parts.next().unwrap_or_default().as_bytes());
                for part in parts {
                    out.extend_from_slice(live);
                    out.extend_from_slice(part.as_bytes());
                }
                out
            };
            let (before, after) = (name(before), name(after));
            let varying = candidate
                .strip_prefix(before.as_slice())?
                .strip_suffix(after.as_slice())?;
            if varying.is_empty() || candidate == live {
                return None;
            }
            if varying.len() <= 6 && varying.iter().all(u8::is_ascii_digit) {
                let number = std::str::from_utf8(varying).ok()?.parse().ok()?;
                return Some(Rank::Numbered(number));
            }
            Some(Rank::Dated(varying.to_vec()))
        }
    }
}

/// The rank of `candidate` among the built-in generation names of `live`.
fn builtin_rank(live: &[u8], candidate: &[u8]) -> Option<Rank> {
    let rest = candidate.strip_prefix(live)?;
    let (&separator, suffix) = rest.split_first()?;
    if !matches!(separator, b'.' | b'-')
        || suffix.is_empty()
        || !suffix.iter().any(u8::is_ascii_digit)
        || !suffix
            .iter()
            .all(|&b| b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return None;
    }
    let all_digits = suffix.iter().all(u8::is_ascii_digit);
    if separator == b'.' && all_digits && suffix.len() <= 6 {
        let number = std::str::from_utf8(suffix).ok()?.parse().ok()?;
        return Some(Rank::Numbered(number));
    }
    Some(Rank::Dated(suffix.to_vec()))
}

/// Whether the file named `candidate` is a rotated generation of the file
/// named `live` (in the same directory).
pub fn is_generation_name(live: &OsStr, candidate: &OsStr, names: &RotatedNames) -> bool {
    rank(live.as_encoded_bytes(), candidate.as_encoded_bytes(), names).is_some()
}

/// The rotated generations of the file at `live`, oldest first. A directory
/// that cannot be read has none.
pub fn generations(live: &Path, names: &RotatedNames) -> Vec<PathBuf> {
    let Some(name) = live.file_name() else {
        return Vec::new();
    };
    let dir = live
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(Rank, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let rank = rank(
                name.as_encoded_bytes(),
                OsStr::as_encoded_bytes(&file_name),
                names,
            )?;
            Some((rank, dir.join(file_name)))
        })
        .collect();
    found.sort_by(|(a, _), (b, _)| a.age_order(b));
    found.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_a_generation() {
        let live = b"app.log";
        assert_eq!(
            rank(live, b"app.log.1", &RotatedNames::Builtin),
            Some(Rank::Numbered(1))
        );
        assert_eq!(
            rank(live, b"app.log.12", &RotatedNames::Builtin),
            Some(Rank::Numbered(12))
        );
        assert_eq!(
            rank(live, b"app.log-20261122", &RotatedNames::Builtin),
            Some(Rank::Dated(b"20261122".to_vec()))
        );
        assert_eq!(
            rank(live, b"app.log.20261122", &RotatedNames::Builtin),
            Some(Rank::Dated(b"20261122".to_vec()))
        );
        assert_eq!(
            rank(live, b"app.log.2026-11-22_1400", &RotatedNames::Builtin),
            Some(Rank::Dated(b"2026-11-22_1400".to_vec()))
        );
        for not in [
            &b"app.log"[..],
            b"app.log.1.gz",
            b"app.log.gz",
            b"app.log.old",
            b"app.log.",
            b"app.log.-_",
            b"app.logx.1",
            b"other.log.1",
            b"app.log1",
        ] {
            assert_eq!(
                rank(live, not, &RotatedNames::Builtin),
                None,
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }

    #[test]
    fn generations_named_by_the_input() {
        let live = b"app.log";
        let dotted = RotatedNames::pattern("{name}.*").unwrap();
        assert_eq!(rank(live, b"app.log.3", &dotted), Some(Rank::Numbered(3)));
        assert_eq!(
            rank(live, b"app.log.old", &dotted),
            Some(Rank::Dated(b"old".to_vec()))
        );
        let dashed = RotatedNames::pattern("app-*.log").unwrap();
        assert_eq!(
            rank(live, b"app-2026-11-30.log", &dashed),
            Some(Rank::Dated(b"2026-11-30".to_vec()))
        );
        for (not, names) in [
            (&b"app.log.1.gz"[..], &dotted),
            (b"app.log.", &dotted),
            (b"app.log", &dotted),
            (b"app-.log", &dashed),
            (b"app.log.1", &dashed),
            (b"app-2026-11-30.log.gz", &dashed),
        ] {
            assert_eq!(
                rank(live, not, names),
                None,
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }

    #[test]
    fn generations_come_oldest_first() {
        let dir = std::env::temp_dir()
            .join(format!("logredact-rotation-{}", std::process::id()))
            .join("order");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for name in [
            "app.log",
            "app.log.1",
            "app.log.10",
            "app.log.2",
            "app.log-20261121",
            "app.log-20261120",
            "app.log.3.gz",
            "other.log.1",
        ] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        let names: Vec<String> = generations(&dir.join("app.log"), &RotatedNames::Builtin)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "app.log-20261120",
                "app.log-20261121",
                "app.log.10",
                "app.log.2",
                "app.log.1"
            ]
        );
    }
}
