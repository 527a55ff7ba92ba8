//! The files a `follow:` pattern matches (`/var/log/pods/*/*/*.log`, `**`
//! for any depth). Each is followed as its own stream; the pattern is matched
//! again now and then, so that files that appear later are followed too.
//!
//! The directory tree is walked from the pattern's first directory with a
//! wildcard, without following links to directories (a link cycle would
//! have no end); a link to a file is a file (`/var/log/containers`).
//!
//! Not followed, though matched: a rotated generation (`app.log.1`) of a
//! name the pattern matches, whether that file exists now or not (it is read
//! as part of that file's rotation chain, or it would be read twice); a
//! compressed file (`.gz`, `.bz2`, `.xz`, `.zst`), which is not text; and
//! logredact's own files (the state directory, the output, the audit file),
//! which it would otherwise read back and write again without end.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobMatcher};

use crate::config::RotatedNames;
use crate::source::rotation::{COMPRESSED, is_generation_name};
use crate::source::walk::{Found, WalkCache, walk};

/// Characters that make a path component a wildcard.
const WILDCARDS: [char; 4] = ['*', '?', '[', '{'];

/// Parses a `follow:` pattern: `*` and `?` stay within one path component,
/// `**` spans any number.
pub fn parse_pattern(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

/// Files logredact writes itself, never followed.
#[derive(Debug, Clone, Default)]
pub struct OwnFiles {
    /// Device and inode of directories whose files are logredact's.
    dirs: Vec<(u64, u64)>,
    /// Device and inode of files that are logredact's.
    files: Vec<(u64, u64)>,
}

impl OwnFiles {
    /// The state directory, and the output and audit files (as far as they
    /// exist now).
    pub fn new(state_dir: Option<&Path>, files: &[&Path]) -> OwnFiles {
        let id = |path: &Path| fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        OwnFiles {
            dirs: state_dir.and_then(id).into_iter().collect(),
            files: files.iter().filter_map(|p| id(p)).collect(),
        }
    }

    /// Whether `path` is one of logredact's own files (or in its state
    /// directory).
    pub fn contains(&self, path: &Path) -> bool {
        let Ok(metadata) = fs::metadata(path) else {
            return false;
        };
        let parent = path.parent().and_then(|p| fs::metadata(p).ok());
        self.files.contains(&(metadata.dev(), metadata.ino()))
            || parent.is_some_and(|p| self.dirs.contains(&(p.dev(), p.ino())))
    }

    /// Whether the file `file` (device and inode) may be one of
    /// logredact's own files on another device: it has the inode of one.
    fn may_be(&self, file: (u64, u64)) -> bool {
        self.files.iter().any(|&(_, ino)| ino == file.1)
    }

    /// Whether the file `file`, in the directory `dir` (each a device and an
    /// inode), is one of logredact's own files.
    fn holds_in(&self, file: (u64, u64), dir: (u64, u64)) -> bool {
        self.files.contains(&file) || self.dirs.contains(&dir)
    }
}

/// A file a pattern matched, and which file it was (device and inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedFile {
    pub path: PathBuf,
    pub file: (u64, u64),
}

/// A `follow:` pattern.
#[derive(Debug, Clone)]
pub struct FilePattern {
    pattern: String,
    matcher: GlobMatcher,
    /// Where the walk starts: the components before the first wildcard.
    root: PathBuf,
    /// How deep below `root` a match can be; `None` with `**`.
    depth: Option<usize>,
    rotated: RotatedNames,
    own: OwnFiles,
}

impl FilePattern {
    /// The pattern, already checked when the input spec was parsed; the
    /// files it matches name their generations as `rotated` says; `own`
    /// files are never followed.
    pub fn new(pattern: &str, rotated: RotatedNames, own: OwnFiles) -> FilePattern {
        let matcher = parse_pattern(pattern).unwrap_or_else(|_| {
            // Checked when parsed: unreachable; a pattern matching nothing
            // is the safe answer.
            Glob::new("")
                .map(|g| g.compile_matcher())
                .expect("empty glob")
        });
        let mut root = PathBuf::new();
        let mut depth = Some(0);
        let mut wild = false;
        for component in Path::new(pattern).components() {
            let text = component.as_os_str().to_string_lossy();
            wild = wild || text.contains(WILDCARDS);
            if !wild {
                root.push(component);
                continue;
            }
            depth = match (depth, component) {
                (_, Component::Normal(name)) if name == "**" => None,
                (Some(d), _) => Some(d + 1),
                (None, _) => None,
            };
        }
        if root.as_os_str().is_empty() {
            root.push(".");
        }
        FilePattern {
            pattern: pattern.to_string(),
            matcher,
            root,
            depth,
            rotated,
            own,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// How the generations of the files it matches are named.
    pub fn rotated(&self) -> &RotatedNames {
        &self.rotated
    }

    /// logredact's own files, which it never matches.
    pub fn own_files(&self) -> &OwnFiles {
        &self.own
    }

    /// [`FilePattern::matches_again`] with nothing kept from a last time.
    #[cfg(test)]
    pub fn matches(&self) -> Vec<MatchedFile> {
        self.matches_again(&mut WalkCache::default())
    }

    /// The files the pattern matches now, sorted: regular files (or links to
    /// them), less generations, compressed files and logredact's own.
    /// Directories that cannot be read are passed over (they are tried
    /// again next time). Directory listings of the last time are kept in
    /// `cache` and used again while the directories are unchanged (see
    /// `walk`).
    pub fn matches_again(&self, cache: &mut WalkCache) -> Vec<MatchedFile> {
        let files: Vec<MatchedFile> = walk(&self.root, self.depth, cache)
            .into_iter()
            .filter(|found| self.matcher.is_match(&found.path))
            .filter(|found| !is_compressed(&found.path))
            .filter_map(|Found { path, dir, file }| {
                // A regular file is known from its directory's listing;
                // anything else (a link) is looked at.
                let file = match file {
                    // Its device is its directory's, but for a file mounted
                    // there: for one that may be logredact's own, it is
                    // looked up.
                    Some(file) if !self.own.may_be(file) => file,
                    _ => {
                        let metadata = fs::metadata(&path).ok()?;
                        metadata
                            .is_file()
                            .then(|| (metadata.dev(), metadata.ino()))?
                    }
                };
                (!self.own.holds_in(file, dir)).then_some(MatchedFile { path, file })
            })
            .collect();
        self.without_generations(files)
    }

    /// `files` less those that are rotated generations of a name the
    /// pattern matches (or of another of them), sorted.
    fn without_generations(&self, files: Vec<MatchedFile>) -> Vec<MatchedFile> {
        let mut by_dir: BTreeMap<PathBuf, HashSet<OsString>> = BTreeMap::new();
        for MatchedFile { path, .. } in &files {
            if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                by_dir
                    .entry(dir.to_path_buf())
                    .or_default()
                    .insert(name.to_os_string());
            }
        }
        let mut kept: Vec<MatchedFile> = files
            .into_iter()
            .filter(|MatchedFile { path, .. }| {
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    return true;
                };
                !self.is_generation(dir, name, &by_dir[dir])
            })
            .collect();
        kept.sort_by(|a, b| a.path.cmp(&b.path));
        kept
    }

    /// Whether `name` in `dir` is a generation of one of `names`, or of a
    /// name the pattern matches (the live file may be gone for a moment).
    fn is_generation(&self, dir: &Path, name: &OsStr, names: &HashSet<OsString>) -> bool {
        match &self.rotated {
            // The live name is a prefix, cut before a separator.
            RotatedNames::Builtin => {
                let bytes = name.as_bytes();
                bytes
                    .iter()
                    .enumerate()
                    .filter(|&(i, &b)| i > 0 && (b == b'.' || b == b'-'))
                    .any(|(i, _)| {
                        let live = OsStr::from_bytes(&bytes[..i]);
                        is_generation_name(live, name, &self.rotated)
                            && (names.contains(live) || self.matcher.is_match(dir.join(live)))
                    })
            }
            RotatedNames::Pattern { .. } => names
                .iter()
                .any(|live| live != name && is_generation_name(live, name, &self.rotated)),
        }
    }
}

/// Whether `path` names a compressed file.
fn is_compressed(path: &Path) -> bool {
    let name = path.file_name().map_or(&[][..], OsStr::as_bytes);
    COMPRESSED
        .iter()
        .any(|ending| name.ends_with(ending.as_bytes()))
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
                OwnFiles::default(),
            )
            .matches()
            .iter()
            .map(|m| m.path.strip_prefix(&dir).unwrap().display().to_string())
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
        // `**` at the end: everything below.
        assert_eq!(
            names("pods/ns_b/**"),
            ["pods/ns_b/web/1.log", "pods/ns_b/web/notes.txt"]
        );
        // A generation is not a stream of its own while its live file is
        // gone for a moment (renamed, not yet created again).
        fs::remove_file(dir.join("top.log")).unwrap();
        assert_eq!(names("top*"), Vec::<String>::new());
        fs::remove_dir_all(&dir).unwrap();
    }

    fn relative(dir: &Path, pattern: &str, own: OwnFiles) -> Vec<Vec<u8>> {
        FilePattern::new(
            &format!("{}/{pattern}", dir.display()),
            RotatedNames::Builtin,
            own,
        )
        .matches()
        .iter()
        .map(|m| {
            m.path
                .strip_prefix(dir)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        })
        .collect()
    }

    #[test]
    fn links_to_files_are_files_links_to_directories_are_not_walked() {
        let dir = scratch("links");
        fs::create_dir_all(dir.join("pods/p")).unwrap();
        fs::write(dir.join("pods/p/0.log"), b"x\n").unwrap();
        fs::create_dir_all(dir.join("logs")).unwrap();
        std::os::unix::fs::symlink(dir.join("pods/p/0.log"), dir.join("logs/c.log")).unwrap();
        // Cycles: a walk that followed them would not end.
        std::os::unix::fs::symlink(".", dir.join("logs/self")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("logs/up")).unwrap();
        // A dangling link is no file.
        std::os::unix::fs::symlink(dir.join("gone.log"), dir.join("logs/dangling.log")).unwrap();
        assert_eq!(
            relative(&dir, "logs/**/*.log", OwnFiles::default()),
            [b"logs/c.log".to_vec()]
        );
        assert_eq!(
            relative(&dir, "**/*.log", OwnFiles::default()),
            [b"logs/c.log".to_vec(), b"pods/p/0.log".to_vec()]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn logredacts_own_files_and_names_of_any_bytes() {
        let dir = scratch("own");
        let state = dir.join("state");
        fs::create_dir_all(&state).unwrap();
        for file in [
            "state/identity.key",
            "state/pattern-1.json",
            "out.log",
            "app.log",
        ] {
            fs::write(dir.join(file), b"x\n").unwrap();
        }
        let odd = OsStr::from_bytes(b"bad\xff.log");
        fs::write(dir.join(odd), b"x\n").unwrap();
        let own = OwnFiles::new(Some(&state), &[&dir.join("out.log")]);
        assert_eq!(
            relative(&dir, "**", own),
            [b"app.log".to_vec(), b"bad\xff.log".to_vec()]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
