//! Throughput of the scanner core alone, in memory, in bytes per second: clean
//! text, the default-density mixed corpus, and the dense worst case. The
//! corpora come from `benches/gen_corpus.py` and are cached under `target/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logredact::{DetectionMode, FingerprintKey, RuleSet, ScanSink, Scanner, defaults};

/// Size of each benchmark corpus.
const CORPUS_MB: usize = 32;
/// Chunk size the scanner is fed in, as the pipeline reads.
const CHUNK: usize = 64 * 1024;

/// Counts the output without storing it, so that the benchmark measures the
/// scanner and not a growing buffer.
#[derive(Default)]
struct Counting {
    bytes: usize,
    detections: usize,
}

impl ScanSink for Counting {
    fn write(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len();
    }
    fn detection(&mut self, _: logredact::Detection) {
        self.detections += 1;
    }
}

fn corpus(profile: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target").join("bench-corpus");
    std::fs::create_dir_all(&dir).expect("create target/bench-corpus");
    let path = dir.join(format!("{profile}-{CORPUS_MB}mb.log"));
    if !path.exists() {
        let output = Command::new("python3")
            .arg(root.join("benches").join("gen_corpus.py"))
            .args(["--size-mb", &CORPUS_MB.to_string(), "--profile", profile])
            .output()
            .expect("run python3 benches/gen_corpus.py");
        assert!(output.status.success(), "gen_corpus.py failed");
        std::fs::write(&path, output.stdout).expect("write corpus");
    }
    std::fs::read(&path).expect("read corpus")
}

fn scan(rules: &Arc<RuleSet>, mode: DetectionMode, input: &[u8]) -> Counting {
    let mut scanner = Scanner::new(Arc::clone(rules), mode);
    let mut sink = Counting::default();
    for chunk in input.chunks(CHUNK) {
        scanner.feed(chunk, &mut sink);
    }
    scanner.finish(&mut sink);
    sink
}

/// The default rule and the nine rules of the credential pack.
fn ten_rules() -> Arc<RuleSet> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join("rules");
    let config = logredact::config::Config::parse(
        "include: [common-credentials.yaml]\n",
        "bench",
        Some(&dir),
    )
    .expect("the credential pack loads");
    let key = FingerprintKey::derive(b"bench");
    Arc::new(
        config
            .compile(key, &logredact::config::KeyOrigin::Random)
            .expect("the pack compiles"),
    )
}

fn bench_ten_rules(c: &mut Criterion) {
    let rules = ten_rules();
    for profile in ["clean", "mixed"] {
        let input = corpus(profile);
        let mut group = c.benchmark_group(format!("scan-10-rules/{profile}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.sample_size(10);
        group.bench_function("mask-only", |b| {
            b.iter(|| scan(&rules, DetectionMode::MaskOnly, &input))
        });
        group.finish();
    }
}

fn bench_profiles(c: &mut Criterion) {
    let rules = Arc::new(
        RuleSet::new(defaults::default_rules(), FingerprintKey::derive(b"bench"))
            .expect("default rules"),
    );
    for profile in ["clean", "mixed", "dense"] {
        let input = corpus(profile);
        let mut group = c.benchmark_group(format!("scan/{profile}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.sample_size(10);
        for (name, mode) in [
            ("mask-only", DetectionMode::MaskOnly),
            ("classify", DetectionMode::Classify),
        ] {
            group.bench_function(name, |b| b.iter(|| scan(&rules, mode, &input)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_profiles, bench_ten_rules);
criterion_main!(benches);
