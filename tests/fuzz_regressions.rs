//! Replays the committed fuzz corpora through the same checks the fuzz
//! targets run, on the stable toolchain, so every input the fuzzer found
//! interesting (and every crash it ever found, once added to a corpus) stays
//! covered by `cargo test`.

mod fuzz_support;

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8]), at_least: usize) {
    let files = corpus(target);
    assert!(
        files.len() >= at_least,
        "fuzz/corpus/{target} holds {} inputs, expected at least {at_least}",
        files.len()
    );
    for path in files {
        let data = fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its fuzz check", path.display());
    }
}

#[test]
fn chunking_corpus_replays_clean() {
    replay("chunking", fuzz_support::check_chunking, 100);
}

#[test]
fn config_corpus_replays_clean() {
    replay("config", fuzz_support::check_config, 3);
}

#[test]
fn msgpack_corpus_replays_clean() {
    replay("msgpack", fuzz_support::check_msgpack, 10);
}

#[test]
fn audit_summary_corpus_replays_clean() {
    replay("audit_summary", fuzz_support::check_audit_summary, 1);
}

/// The chunking check compares against a reference; make sure that
/// reference really masks, so a replay that passes means something.
#[test]
fn chunking_reference_masks_tokens_and_the_other_rules() {
    let input = b"x dapi0123456789abcdef0123456789abcdef abbbc 42-7 \"ok\" y";
    assert_eq!(
        fuzz_support::reference(input),
        b"x <pat> <ab> <num> <quote> y".to_vec()
    );
    let mut data = 7u64.to_le_bytes().to_vec();
    data.extend_from_slice(input);
    fuzz_support::check_chunking(&data);
}
