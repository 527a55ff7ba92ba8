//! Which file is which: a followed file is known by its content as well as
//! its device and inode.
//!
//! Inode numbers are reused at once (ext4 hands a freed number to the next
//! file created), and a copy-truncated file keeps its inode while its content
//! starts over. So a file's identity includes a *print*: a keyed BLAKE3 hash
//! of its first bytes — the first [`PRINT_LEN`] bytes, or all of them while the
//! file is shorter, growing with the file, with the length it covers — as
//! Filebeat's `fingerprint` and the OpenTelemetry filelog receiver's
//! `fingerprint_size` do.
//!
//! The rule ([`judge`]): a recorded position (identity and offset) applies to
//! a file only if the file's first `print.len` bytes hash to the recorded
//! print and the file is at least as long as the offset. The device and inode
//! then only say where to look first: the same content under another inode is
//! the same file (renamed, or copied before a truncation). A position recorded
//! by an older version, without a print, can only trust the device and inode
//! (and the length), as those versions did.
//!
//! Why keyed: a print of a short file, or of a first KiB that ends inside a
//! token, is a hash of a few unknown bytes next to bytes anyone with the
//! redacted output knows; unkeyed, it could be brute-forced back into part of
//! a secret. The key lives in the state directory beside the checkpoints
//! ([`IdentityKey::load_or_create`]), never in them.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many first bytes of a file its print covers, at most.
pub const PRINT_LEN: u64 = 1024;

/// Name of the key file in the state directory.
const KEY_FILE: &str = "identity.key";

/// The secret key of content prints.
#[derive(Clone)]
pub struct IdentityKey([u8; 32]);

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityKey(<secret>)")
    }
}

impl IdentityKey {
    /// A key for prints that never leave the process (no state directory:
    /// nothing is saved, so nothing needs to stay comparable or secret).
    pub fn in_memory() -> IdentityKey {
        IdentityKey(blake3::derive_key(
            "logredact 2026-11 in-memory file identity",
            b"",
        ))
    }

    /// The key kept in `dir`, created (random, private, never through a
    /// symbolic link) if there is none yet.
    pub fn load_or_create(dir: &Path) -> io::Result<IdentityKey> {
        let path = dir.join(KEY_FILE);
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => {
                let mut key = [0u8; 32];
                let read = file.read_at(&mut key, 0).map_err(named)?;
                if read != key.len() || file.metadata().map_err(named)?.len() != 32 {
                    return Err(named(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "not a key written by logredact (32 bytes); remove it to start over (followed files are then read again from their start)",
                    )));
                }
                Ok(IdentityKey(key))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| named(io::Error::other(e.to_string())))?;
                let temporary = dir.join(format!("{KEY_FILE}.tmp"));
                let _ = fs::remove_file(&temporary);
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temporary)
                    .map_err(named)?;
                file.write_all(&key).map_err(named)?;
                file.sync_all().map_err(named)?;
                // Two processes starting at once must agree on one key: the
                // first link wins, the other reads it.
                match fs::hard_link(&temporary, &path) {
                    Ok(()) => {
                        let _ = fs::remove_file(&temporary);
                        Ok(IdentityKey(key))
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let _ = fs::remove_file(&temporary);
                        IdentityKey::load_or_create(dir)
                    }
                    Err(e) => Err(named(e)),
                }
            }
            Err(e) => Err(named(e)),
        }
    }

    /// The print of a file whose first bytes are `head`.
    fn print(&self, head: &[u8]) -> ContentPrint {
        let hash = blake3::keyed_hash(&self.0, head);
        let mut short = [0u8; 16];
        short.copy_from_slice(&hash.as_bytes()[..16]);
        ContentPrint {
            len: head.len() as u64,
            hash: PrintHash(short),
        }
    }
}

/// A keyed hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentPrint {
    /// How many first bytes it covers: at most [`PRINT_LEN`].
    pub len: u64,
    /// Their keyed hash.
    pub hash: PrintHash,
}

/// The hash of a [`ContentPrint`], written as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrintHash(pub [u8; 16]);

impl fmt::Debug for PrintHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrintHash({self})")
    }
}

impl fmt::Display for PrintHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for PrintHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PrintHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PrintHash, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bad = || serde::de::Error::custom("a fingerprint is 32 lower-case hex digits");
        if text.len() != 32 {
            return Err(bad());
        }
        let mut hash = [0u8; 16];
        for (i, byte) in hash.iter_mut().enumerate() {
            let digits = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            if digits.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
        }
        Ok(PrintHash(hash))
    }
}

/// Identity of a file: device, inode and, when known, the print of its
/// first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// The print of the file's first bytes; `None` only for a position saved
    /// by an older version, which recorded none.
    pub print: Option<ContentPrint>,
}

impl FileId {
    /// Whether `metadata` is of the same device and inode.
    pub fn same_inode(&self, metadata: &fs::Metadata) -> bool {
        self.dev == metadata.dev() && self.ino == metadata.ino()
    }
}

/// The first bytes of a file being read, kept to extend its print as the
/// file grows.
pub struct Head {
    /// The file's bytes `[0, bytes.len())`; never more than [`PRINT_LEN`].
    bytes: Vec<u8>,
    /// The print of `bytes`.
    print: ContentPrint,
}

impl fmt::Debug for Head {
    // The bytes are the file's content: possibly a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Head").field("print", &self.print).finish()
    }
}

impl Head {
    /// The first bytes of `file`, as many as it has up to [`PRINT_LEN`].
    pub fn read(file: &File, key: &IdentityKey) -> io::Result<Head> {
        let bytes = read_prefix(file, PRINT_LEN)?;
        Ok(Head {
            print: key.print(&bytes),
            bytes,
        })
    }

    /// The print of the bytes known so far.
    pub fn print(&self) -> ContentPrint {
        self.print
    }

    /// Takes in `bytes`, read from the file at `offset`.
    pub fn extend(&mut self, key: &IdentityKey, offset: u64, bytes: &[u8]) {
        let known = self.bytes.len() as u64;
        if offset > known || known >= PRINT_LEN {
            return;
        }
        let from = (known - offset) as usize;
        let to = bytes.len().min((PRINT_LEN - offset) as usize);
        if from < to {
            self.bytes.extend_from_slice(&bytes[from..to]);
            self.print = key.print(&self.bytes);
        }
    }
}

/// Up to `len` first bytes of `file` (fewer if it is shorter).
fn read_prefix(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < bytes.len() {
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// Whether `file` begins with the content `print` was taken of.
pub fn begins_with(file: &File, print: &ContentPrint, key: &IdentityKey) -> io::Result<bool> {
    let bytes = read_prefix(file, print.len)?;
    Ok(bytes.len() as u64 == print.len && key.print(&bytes) == *print)
}

/// What a recorded position says about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The position lies in this file.
    Same,
    /// The file begins with other content: another file (a new one under a
    /// reused inode, or this one truncated and written again).
    OtherContent,
    /// The file is shorter than the position: another file, or this one
    /// truncated.
    Shorter,
    /// A position without a print, and another inode.
    OtherInode,
}

/// Whether the position `offset` in the file `recorded` lies in `file`
/// (whose metadata is `metadata`): see the module comment for the rule.
pub fn judge(
    recorded: &FileId,
    offset: u64,
    file: &File,
    metadata: &fs::Metadata,
    key: &IdentityKey,
) -> io::Result<Verdict> {
    if metadata.len() < offset {
        return Ok(Verdict::Shorter);
    }
    match &recorded.print {
        Some(print) if begins_with(file, print, key)? => Ok(Verdict::Same),
        Some(_) => Ok(Verdict::OtherContent),
        None if recorded.same_inode(metadata) => Ok(Verdict::Same),
        None => Ok(Verdict::OtherInode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("logredact-identity-{}", std::process::id()))
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The identity of the file at `path` after reading it to its end.
    fn identity(path: &Path, key: &IdentityKey) -> (FileId, u64) {
        let file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        let head = Head::read(&file, key).unwrap();
        (
            FileId {
                dev: metadata.dev(),
                ino: metadata.ino(),
                print: Some(head.print()),
            },
            metadata.len(),
        )
    }

    fn verdict(recorded: &FileId, offset: u64, path: &Path, key: &IdentityKey) -> Verdict {
        let file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        judge(recorded, offset, &file, &metadata, key).unwrap()
    }

    #[test]
    fn the_same_inode_with_other_content_is_another_file() {
        let dir = scratch("same-inode");
        let (path, key) = (dir.join("app.log"), IdentityKey::in_memory());
        fs::write(&path, b"old content, first line\n").unwrap();
        let (recorded, offset) = identity(&path, &key);
        // Truncated and written again, longer than before: same inode.
        fs::write(&path, b"new content that is longer than the old one\n").unwrap();
        assert!(recorded.same_inode(&fs::metadata(&path).unwrap()));
        assert_eq!(
            verdict(&recorded, offset, &path, &key),
            Verdict::OtherContent
        );
        // An older checkpoint without a print cannot tell.
        let legacy = FileId {
            print: None,
            ..recorded
        };
        assert_eq!(verdict(&legacy, offset, &path, &key), Verdict::Same);
    }

    #[test]
    fn the_same_content_under_another_inode_is_the_same_file() {
        let dir = scratch("renamed");
        let (path, key) = (dir.join("app.log"), IdentityKey::in_memory());
        fs::write(&path, b"some lines\nof a log\n").unwrap();
        let (recorded, offset) = identity(&path, &key);
        // Renamed: same inode. Copied: another inode, same content.
        fs::rename(&path, dir.join("app.log.1")).unwrap();
        assert_eq!(
            verdict(&recorded, offset, &dir.join("app.log.1"), &key),
            Verdict::Same
        );
        fs::copy(dir.join("app.log.1"), dir.join("copy")).unwrap();
        let copy = dir.join("copy");
        assert!(!recorded.same_inode(&fs::metadata(&copy).unwrap()));
        assert_eq!(verdict(&recorded, offset, &copy, &key), Verdict::Same);
        let legacy = FileId {
            print: None,
            ..recorded
        };
        assert_eq!(verdict(&legacy, offset, &copy, &key), Verdict::OtherInode);
    }

    #[test]
    fn a_file_shorter_than_the_position_is_another_file() {
        let dir = scratch("shorter");
        let (path, key) = (dir.join("app.log"), IdentityKey::in_memory());
        fs::write(&path, b"0123456789\nabcdef\n").unwrap();
        let (recorded, offset) = identity(&path, &key);
        // Truncated to less than the position, with the print still intact.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(12)
            .unwrap();
        let short = FileId {
            print: Some(key.print(b"0123456789")),
            ..recorded
        };
        assert_eq!(verdict(&short, offset, &path, &key), Verdict::Shorter);
        assert_eq!(verdict(&short, 12, &path, &key), Verdict::Same);
    }

    #[test]
    fn the_print_of_a_short_file_grows_with_it() {
        let dir = scratch("grows");
        let (path, key) = (dir.join("app.log"), IdentityKey::in_memory());
        fs::write(&path, b"short\n").unwrap();
        let mut head = Head::read(&File::open(&path).unwrap(), &key).unwrap();
        let early = head.print();
        assert_eq!(early.len, 6);
        let (recorded, _) = identity(&path, &key);
        // It grows past PRINT_LEN, read in two chunks.
        let more = vec![b'x'; 2000];
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&more).unwrap();
        head.extend(&key, 6, &more[..500]);
        assert_eq!(head.print().len, 506);
        head.extend(&key, 506, &more[500..]);
        assert_eq!(head.print().len, PRINT_LEN);
        assert_eq!(
            head.print(),
            Head::read(&File::open(&path).unwrap(), &key)
                .unwrap()
                .print()
        );
        // What was recorded while it was short still applies.
        assert_eq!(verdict(&recorded, 6, &path, &key), Verdict::Same);
        let grown = FileId {
            print: Some(head.print()),
            ..recorded
        };
        assert_eq!(verdict(&grown, 2006, &path, &key), Verdict::Same);
        // Another key gives other prints.
        let other = IdentityKey::load_or_create(&dir).unwrap();
        assert_ne!(
            Head::read(&File::open(&path).unwrap(), &other)
                .unwrap()
                .print(),
            head.print()
        );
    }

    #[test]
    fn the_key_is_kept_private_and_reused() {
        let dir = scratch("key");
        let first = IdentityKey::load_or_create(&dir).unwrap();
        let again = IdentityKey::load_or_create(&dir).unwrap();
        assert_eq!(first.0, again.0);
        let mode = fs::metadata(dir.join(KEY_FILE)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(format!("{first:?}"), "IdentityKey(<secret>)");
        // A link planted in its place is not followed.
        let planted = scratch("key-planted");
        fs::write(planted.join("elsewhere"), [7u8; 32]).unwrap();
        std::os::unix::fs::symlink(planted.join("elsewhere"), planted.join(KEY_FILE)).unwrap();
        assert!(IdentityKey::load_or_create(&planted).is_err());
    }

    #[test]
    fn a_print_reads_back_from_its_hex_digits() {
        let print = IdentityKey::in_memory().print(b"abc");
        let text = serde_json::to_string(&print.hash).unwrap();
        assert_eq!(text.len(), 34);
        let back: PrintHash = serde_json::from_str(&text).unwrap();
        assert_eq!(back, print.hash);
        assert!(serde_json::from_str::<PrintHash>("\"00\"").is_err());
        assert!(serde_json::from_str::<PrintHash>(&text.to_uppercase()).is_err());
    }
}
