//! The walk of a `follow:` pattern's directory tree, matched again every
//! second: with a thousand pods that is thousands of directories, and
//! reading each again every second was most of the CPU of following their
//! files while they are quiet. A directory's listing is kept and used again
//! while the directory is unchanged — same device, inode, modification and
//! change times — and its listing was made when those times were already
//! [`SETTLED`] old (so a change after the listing cannot have left the times
//! as they were, given a file system clock at most that far behind ours).
//! Every listing is made afresh at least every [`RELIST_AFTER`] anyway, so a
//! file system whose times cannot be trusted delays a new file by that much
//! at worst, and never hides it.
//!
//! Links to directories are not followed (a cycle would have no end); the
//! root is (it is named by the pattern).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How old a directory's times must be for its listing to be kept.
const SETTLED: Duration = Duration::from_secs(2);

/// How long a listing is used at most.
const RELIST_AFTER: Duration = Duration::from_secs(10);

/// A directory as its listing found it.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(metadata: &fs::Metadata) -> Stamp {
        Stamp {
            dev: metadata.dev(),
            ino: metadata.ino(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// The later of the two times.
    fn changed(&self) -> SystemTime {
        let at = |(secs, nanos): (i64, i64)| {
            let nanos = Duration::from_nanos(nanos.clamp(0, 999_999_999) as u64);
            match u64::try_from(secs) {
                Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + nanos,
                Err(_) => SystemTime::UNIX_EPOCH,
            }
        };
        at(self.mtime).max(at(self.ctime))
    }
}

/// What a directory entry is, as listed: while the directory is unchanged,
/// so is what its names are (a file replaced or renamed changes the
/// directory).
#[derive(Clone, Copy)]
enum Kind {
    /// A directory (not a link to one).
    Dir,
    /// A regular file (not a link to one), with its inode.
    File(u64),
    /// Anything else: a link, a FIFO, a device...
    Other,
}

/// A directory's entries, as listed.
struct Listing {
    stamp: Stamp,
    listed_at: SystemTime,
    entries: Vec<(OsString, Kind)>,
}

impl Listing {
    fn usable(&self, stamp: &Stamp, now: SystemTime) -> bool {
        let settled = self
            .listed_at
            .duration_since(self.stamp.changed())
            .is_ok_and(|age| age >= SETTLED);
        let fresh = now
            .duration_since(self.listed_at)
            .is_ok_and(|age| age < RELIST_AFTER);
        self.stamp == *stamp && settled && fresh
    }
}

/// The listings of the last walk, by device and inode of the directory.
#[derive(Default)]
pub struct WalkCache {
    listings: HashMap<(u64, u64), Listing>,
}

/// A file found by a walk (anything but a directory), with the device and
/// inode of its directory.
pub(crate) struct Found {
    pub(crate) path: PathBuf,
    pub(crate) dir: (u64, u64),
    /// The device and inode of a regular file (not a link); `None` for
    /// anything else, which is to be looked at.
    pub(crate) file: Option<(u64, u64)>,
}

/// Everything below `root` down to `depth` levels (`None`: any), but
/// directories; directories that cannot be read are passed over.
pub(crate) fn walk(root: &Path, depth: Option<usize>, cache: &mut WalkCache) -> Vec<Found> {
    let mut walk = Walk {
        old: std::mem::take(&mut cache.listings),
        new: HashMap::new(),
        now: SystemTime::now(),
        found: Vec::new(),
    };
    if let Ok(metadata) = fs::metadata(root)
        && metadata.is_dir()
    {
        walk.dir(root.to_path_buf(), &metadata, 1, depth);
    }
    cache.listings = walk.new;
    walk.found
}

struct Walk {
    old: HashMap<(u64, u64), Listing>,
    new: HashMap<(u64, u64), Listing>,
    now: SystemTime,
    found: Vec<Found>,
}

impl Walk {
    /// Walks `dir` (with `metadata`), whose entries are at `level`.
    fn dir(&mut self, dir: PathBuf, metadata: &fs::Metadata, level: usize, depth: Option<usize>) {
        let stamp = Stamp::of(metadata);
        let dir_id = (stamp.dev, stamp.ino);
        let listing = match self.old.remove(&dir_id) {
            Some(kept) if kept.usable(&stamp, self.now) => kept,
            _ => match list(&dir, stamp) {
                Some(listing) => listing,
                None => return,
            },
        };
        let deeper = depth.is_none_or(|d| level < d);
        for (name, kind) in &listing.entries {
            let path = dir.join(name);
            let file = match *kind {
                Kind::Dir => {
                    // Listed as a directory: still one, and not a link, now?
                    if deeper
                        && let Ok(metadata) = fs::symlink_metadata(&path)
                        && metadata.is_dir()
                    {
                        self.dir(path, &metadata, level + 1, depth);
                    }
                    continue;
                }
                Kind::File(ino) => Some((dir_id.0, ino)),
                Kind::Other => None,
            };
            self.found.push(Found {
                path,
                dir: dir_id,
                file,
            });
        }
        self.new.insert(dir_id, listing);
    }
}

/// Lists `dir`; `None` if it cannot be read.
fn list(dir: &Path, stamp: Stamp) -> Option<Listing> {
    // The time is taken before reading: a change during the listing makes
    // the directory's times later than it, and the listing is not kept.
    let listed_at = SystemTime::now();
    let entries = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| {
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => Kind::Dir,
                Ok(t) if t.is_file() => Kind::File(entry.ino()),
                _ => Kind::Other,
            };
            (entry.file_name(), kind)
        })
        .collect();
    Some(Listing {
        stamp,
        listed_at,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("logredact-walk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(found: &[Found], root: &Path) -> Vec<String> {
        let mut names: Vec<String> = found
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_listing_is_kept_only_while_its_directory_is_unchanged_and_settled() {
        let dir = scratch("kept");
        fs::create_dir_all(dir.join("a")).unwrap();
        fs::write(dir.join("a/1.log"), b"").unwrap();
        let mut cache = WalkCache::default();
        assert_eq!(names(&walk(&dir, None, &mut cache), &dir), ["a/1.log"]);
        // Just changed: not settled, so listed again every time.
        fs::write(dir.join("a/2.log"), b"").unwrap();
        assert_eq!(
            names(&walk(&dir, None, &mut cache), &dir),
            ["a/1.log", "a/2.log"]
        );
        // A listing made long enough after the last change is kept: a stale
        // entry planted in it shows that it is used, until the directory
        // changes.
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        walk(&dir, None, &mut cache);
        let a = fs::metadata(dir.join("a")).unwrap();
        let listing = cache.listings.get_mut(&(a.dev(), a.ino())).unwrap();
        listing.entries.push(("planted".into(), Kind::Other));
        assert_eq!(
            names(&walk(&dir, None, &mut cache), &dir),
            ["a/1.log", "a/2.log", "a/planted"]
        );
        fs::write(dir.join("a/3.log"), b"").unwrap();
        assert_eq!(
            names(&walk(&dir, None, &mut cache), &dir),
            ["a/1.log", "a/2.log", "a/3.log"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_listing_is_used_while_settled_and_fresh() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let stamp = Stamp {
            dev: 1,
            ino: 2,
            mtime: (1000, 0),
            ctime: (1000, 5),
        };
        let listing = |listed_at| Listing {
            stamp: stamp.clone(),
            listed_at,
            entries: Vec::new(),
        };
        assert!(listing(at(1003)).usable(&stamp, at(1005)));
        // Listed less than SETTLED after the last change.
        assert!(!listing(at(1001)).usable(&stamp, at(1005)));
        // Made RELIST_AFTER ago.
        assert!(!listing(at(1003)).usable(&stamp, at(1013)));
        // Any time, or another directory at the path.
        let touched = Stamp {
            ctime: (1004, 0),
            ..stamp.clone()
        };
        assert!(!listing(at(1003)).usable(&touched, at(1005)));
        let other = Stamp {
            ino: 3,
            ..stamp.clone()
        };
        assert!(!listing(at(1003)).usable(&other, at(1005)));
    }

    #[test]
    fn depth_bounds_the_walk_and_links_to_directories_are_not_followed() {
        let dir = scratch("depth");
        fs::create_dir_all(dir.join("a/b/c")).unwrap();
        fs::write(dir.join("top.log"), b"").unwrap();
        fs::write(dir.join("a/b/deep.log"), b"").unwrap();
        fs::write(dir.join("a/b/c/deeper.log"), b"").unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("a/loop")).unwrap();
        let mut cache = WalkCache::default();
        assert_eq!(names(&walk(&dir, Some(1), &mut cache), &dir), ["top.log"]);
        assert_eq!(
            names(&walk(&dir, Some(3), &mut cache), &dir),
            ["a/b/deep.log", "a/loop", "top.log"]
        );
        assert_eq!(
            names(&walk(&dir, None, &mut cache), &dir),
            ["a/b/c/deeper.log", "a/b/deep.log", "a/loop", "top.log"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
