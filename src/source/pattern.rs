//! The files a `follow:` pattern matches (`/var/log/pods/*/*/*.log`, `**`
//! for any depth). Each is followed as its own stream; the pattern is matched
//! again now and then, so that files that appear later are followed too.
//!
//! A file the pattern matches that is a rotated generation of another file
//! it matches (`app.log.1` beside `app.log`, with `*`) is not a stream of its
//! own: it is read as part of that file's rotation chain, or it would be
//! read twice.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::config::RotatedNames;
use crate::source::rotation::{COMPRESSED, is_generation_name};

/// A `follow:` pattern.
#[derive(Debug, Clone)]
pub struct FilePattern {
    pattern: String,
    rotated: RotatedNames,
}

impl FilePattern {
    /// The pattern, already checked when the input spec was parsed; the
    /// files it matches name their generations as `rotated` says.
    pub fn new(pattern: &str, rotated: RotatedNames) -> FilePattern {
        FilePattern {
            pattern: pattern.to_string(),
            rotated,
        }
    }

    /// How the generations of the files it matches are named.
    pub fn rotated(&self) -> &RotatedNames {
        &self.rotated
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The files the pattern matches now, sorted: regular files (or links to
    /// them), not rotated generations of another match. Directories that
    /// cannot be read are passed over (they are tried again next time).
    pub fn matches(&self) -> Vec<PathBuf> {
        let Ok(paths) = glob::glob(&self.pattern) else {
            return Vec::new();
        };
        let files: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|path| path.metadata().is_ok_and(|m| m.is_file()))
            .collect();
        without_generations(files, &self.rotated)
    }
}

/// `files` less those that are rotated generations of another of them,
/// sorted.
fn without_generations(files: Vec<PathBuf>, rotated: &RotatedNames) -> Vec<PathBuf> {
    let mut by_dir: BTreeMap<PathBuf, HashSet<OsString>> = BTreeMap::new();
    for path in &files {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            by_dir
                .entry(dir.to_path_buf())
                .or_default()
                .insert(name.to_os_string());
        }
    }
    let mut kept: Vec<PathBuf> = files
        .into_iter()
        .filter(|path| {
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return true;
            };
            !is_generation_of_any(name, &by_dir[dir], rotated)
        })
        .collect();
    kept.sort();
    kept
}

/// Whether `name` is a generation of one of `names` (the live name is a
/// prefix of it ending before a `.` or `-`), or a compressed copy of one of
/// them or of a generation.
fn is_generation_of_any(name: &OsStr, names: &HashSet<OsString>, rotated: &RotatedNames) -> bool {
    let bytes = name.as_bytes();
    if let Some(inner) = COMPRESSED
        .iter()
        .find_map(|ending| bytes.strip_suffix(ending.as_bytes()))
    {
        let inner = OsStr::from_bytes(inner);
        if names.contains(inner) || is_generation_of_any(inner, names, rotated) {
            return true;
        }
    }
    match rotated {
        // The live name is a prefix, cut before a separator.
        RotatedNames::Builtin => bytes
            .iter()
            .enumerate()
            .filter(|&(i, &b)| i > 0 && (b == b'.' || b == b'-'))
            .any(|(i, _)| {
                let live = OsStr::from_bytes(&bytes[..i]);
                names.contains(live) && is_generation_name(live, name, rotated)
            }),
        RotatedNames::Pattern { .. } => names
            .iter()
            .any(|live| live != name && is_generation_name(live, name, rotated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("logredact-pattern-{}", std::process::id()))
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn matches_files_at_any_depth_without_generations_or_directories() {
        let dir = scratch("depth");
        for file in [
            "pods/ns_a/app/0.log",
            "pods/ns_a/app/0.log.20261130-101500",
            "pods/ns_b/web/1.log",
            "pods/ns_b/web/notes.txt",
            "top.log",
            "top.log.1",
            "top.log-20261130",
            "top.log.1.gz",
        ] {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"x\n").unwrap();
        }
        fs::create_dir_all(dir.join("pods/ns_c/dir.log")).unwrap();
        let names = |pattern: &str| -> Vec<String> {
            FilePattern::new(
                &format!("{}/{pattern}", dir.display()),
                RotatedNames::Builtin,
            )
            .matches()
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect()
        };
        assert_eq!(
            names("pods/*/*/*.log"),
            ["pods/ns_a/app/0.log", "pods/ns_b/web/1.log"]
        );
        assert_eq!(
            names("**/*.log"),
            ["pods/ns_a/app/0.log", "pods/ns_b/web/1.log", "top.log"]
        );
        // `*` matches the generations too: they belong to their live file,
        // and compressed ones are not read at all.
        assert_eq!(names("top*"), ["top.log"]);
        assert_eq!(names("pods/ns_a/app/*"), ["pods/ns_a/app/0.log"]);
        // A generation whose live file is not matched is a file of its own.
        assert_eq!(names("top.log.*"), ["top.log.1"]);
        assert!(names("nothing/*.log").is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
