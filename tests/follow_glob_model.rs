//! A randomised model of a `follow:` pattern: files under the pattern are
//! created, appended to (lines split across writes at random points, tokens
//! among them), renamed to another matched name, deleted once read and their
//! names used again (so inodes are reused), while logredact is stopped with
//! SIGTERM and started again on the same state directory, at random. One
//! oracle: every line written is in the output exactly once, redacted as the
//! reference does, in the order of its file (lines carry their file and
//! number); nothing else is; and no run of 8 hex digits of any token is in the
//! output, the logs or the state directory.
//!
//! Out of the model, as documented limits: SIGKILL (a repeat window; the
//! single-file model covers it), a rename onto a name whose file's stream has
//! not yet been released (that stream reads it from its start), and stops in
//! the middle of a line.
//!
//! `LOGREDACT_GLOB_MODEL_SEED=<n>` runs one scenario; `LOGREDACT_GLOB_MODEL_RUNS`
//! how many (default 6), in three threads.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// The names files may have: three directories, three names in each.
const NAMES: [&str; 9] = [
    "a/x.log", "a/y.log", "a/z.log", "b/x.log", "b/y.log", "b/z.log", "c/x.log", "c/y.log",
    "c/z.log",
];

/// A name let go (renamed away or deleted) is a rename target again only
/// after its stream surely let go of it (released 5 s after its path went).
const NAME_QUARANTINE: Duration = Duration::from_secs(8);

struct File {
    id: usize,
    name: usize,
    /// Lines written, in order.
    lines: Vec<Vec<u8>>,
}

struct Scenario {
    seed: u64,
    rng: TokenGen,
    dir: PathBuf,
    state: PathBuf,
    files: Vec<File>,
    next_id: usize,
    /// When each name was let go, if it was.
    freed_at: HashMap<usize, Instant>,
    /// Files deleted once read.
    retired: Vec<File>,
    tokens: Vec<String>,
    run: Option<Running>,
    /// Output and logs of the runs that have ended.
    output: Vec<u8>,
    logs: String,
    starts: usize,
    /// What was done, for a failure's report.
    history: Vec<String>,
    began: Instant,
}

impl Scenario {
    fn new(seed: u64) -> Scenario {
        let dir = scratch(&format!("glob-model-{seed:x}"));
        for sub in ["a", "b", "c"] {
            std::fs::create_dir_all(dir.join("p").join(sub)).unwrap();
        }
        Scenario {
            seed,
            rng: TokenGen::new(seed),
            state: dir.join("state"),
            dir,
            files: Vec::new(),
            next_id: 0,
            freed_at: HashMap::new(),
            retired: Vec::new(),
            tokens: Vec::new(),
            run: None,
            output: Vec::new(),
            logs: String::new(),
            starts: 0,
            history: Vec::new(),
            began: Instant::now(),
        }
    }

    fn note(&mut self, what: String) {
        let at = self.began.elapsed().as_millis();
        self.history.push(format!("{at:>6} ms  {what}"));
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    fn path(&self, name: usize) -> PathBuf {
        self.dir.join("p").join(NAMES[name])
    }

    fn start(&mut self) {
        let pattern = format!("follow:{}/p/*/*.log", self.dir.display());
        let state = self.state.display().to_string();
        let run = Running::spawn(&["--input", &pattern, "--state-dir", &state]);
        // A stop before the handler is in would kill it, not stop it.
        wait_for_sigterm_handler(&run.child);
        self.run = Some(run);
        self.starts += 1;
        self.note("start".into());
    }

    fn stop(&mut self) {
        self.note("stop (SIGTERM)".into());
        let run = self.run.take().expect("running");
        signal(&run.child, "TERM");
        let (status, output, stderr) = run.finish();
        self.output.extend_from_slice(&output);
        self.logs.push_str(&stderr);
        assert!(
            status.success(),
            "seed {:#x}: logredact exited {status}\n{stderr}",
            self.seed
        );
    }

    /// Everything written so far, the running process's included.
    fn output_now(&self) -> Vec<u8> {
        let mut all = self.output.clone();
        if let Some(run) = &self.run {
            all.extend_from_slice(&run.stdout().bytes());
        }
        all
    }

    fn used_names(&self) -> Vec<usize> {
        self.files.iter().map(|f| f.name).collect()
    }

    /// A name with no file, let go long enough ago (or never used) for a
    /// rename; any name with no file for a new file.
    fn free_name(&mut self, for_rename: bool) -> Option<usize> {
        let used = self.used_names();
        let free: Vec<usize> = (0..NAMES.len())
            .filter(|n| !used.contains(n))
            .filter(|n| {
                !for_rename
                    || self
                        .freed_at
                        .get(n)
                        .is_none_or(|at| at.elapsed() >= NAME_QUARANTINE)
            })
            .collect();
        if free.is_empty() {
            return None;
        }
        Some(free[self.below(free.len() as u64) as usize])
    }

    fn line(&mut self, file: usize) -> Vec<u8> {
        let id = self.files[file].id;
        let number = self.files[file].lines.len();
        let mut line = format!("F{id} L{number} user={}", self.rng.hex(4));
        for _ in 0..self.below(3) {
            let token = self.rng.token();
            let before = [" token=", " ", "\t", "\"", ":"][self.below(5) as usize];
            line.push_str(before);
            line.push_str(&token);
            self.tokens.push(token);
        }
        line.push_str(" end\n");
        line.into_bytes()
    }

    /// Appends whole lines, each written in pieces split at random points.
    fn append_lines(&mut self, file: usize) {
        let path = self.path(self.files[file].name);
        for _ in 0..1 + self.below(4) {
            let line = self.line(file);
            let mut at = 0;
            while at < line.len() {
                let piece = (1 + self.below(line.len() as u64)) as usize;
                let end = (at + piece).min(line.len());
                append(&path, &line[at..end]);
                at = end;
                if at < line.len() && self.below(4) == 0 {
                    std::thread::sleep(Duration::from_millis(self.below(200)));
                }
            }
            self.files[file].lines.push(line);
        }
    }

    /// Waits until every line of `file` is in the output.
    fn wait_read(&self, file: usize) -> bool {
        let Some(last) = self.files[file].lines.last() else {
            return true;
        };
        let last = reference_redaction(last);
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            let output = self.output_now();
            if output.windows(last.len()).any(|w| w == last.as_slice()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn step(&mut self) {
        let running = self.run.is_some();
        match self.below(100) {
            // A new file.
            0..=14 => {
                if let Some(name) = self.free_name(false) {
                    self.files.push(File {
                        id: self.next_id,
                        name,
                        lines: Vec::new(),
                    });
                    self.next_id += 1;
                    let file = self.files.len() - 1;
                    self.note(format!("create F{} at {}", self.next_id - 1, NAMES[name]));
                    append(&self.path(name), b"");
                    self.append_lines(file);
                }
            }
            15..=54 if !self.files.is_empty() => {
                let file = self.below(self.files.len() as u64) as usize;
                self.append_lines(file);
            }
            // Renamed to another matched name.
            55..=64 if !self.files.is_empty() => {
                if let Some(to) = self.free_name(true) {
                    let file = self.below(self.files.len() as u64) as usize;
                    let from = self.files[file].name;
                    std::fs::rename(self.path(from), self.path(to)).unwrap();
                    self.note(format!(
                        "rename F{} from {} to {}",
                        self.files[file].id, NAMES[from], NAMES[to]
                    ));
                    self.freed_at.insert(from, Instant::now());
                    self.files[file].name = to;
                }
            }
            // Deleted once read to its end (a file deleted unread is lost,
            // and rightly so).
            65..=72 if running && !self.files.is_empty() => {
                let file = self.below(self.files.len() as u64) as usize;
                if self.wait_read(file) {
                    let done = self.files.remove(file);
                    std::fs::remove_file(self.path(done.name)).unwrap();
                    self.note(format!("delete F{} at {}", done.id, NAMES[done.name]));
                    self.freed_at.insert(done.name, Instant::now());
                    self.retired.push(done);
                }
            }
            73..=82 => {
                if running {
                    self.stop();
                } else {
                    self.start();
                }
            }
            _ => std::thread::sleep(Duration::from_millis(self.below(1200))),
        }
    }
}

/// Runs one scenario; the failure, if any, names its seed.
fn run_scenario(seed: u64) -> Result<String, String> {
    let mut s = Scenario::new(seed);
    s.start();
    let steps = 20 + s.below(15);
    for _ in 0..steps {
        s.step();
    }
    if s.run.is_none() {
        s.start();
    }
    let files = s.files.len() + s.retired.len();
    let total: usize = s
        .files
        .iter()
        .chain(&s.retired)
        .map(|f| f.lines.len())
        .sum();
    let until = Instant::now() + Duration::from_secs(20);
    while s.output_now().iter().filter(|&&b| b == b'\n').count() < total && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    s.stop();
    check(&s).map(|()| {
        format!(
            "{} files, {total} lines, {} tokens, {} starts, {} output bytes",
            files,
            s.tokens.len(),
            s.starts,
            s.output.len()
        )
    })
}

/// The oracle.
fn check(s: &Scenario) -> Result<(), String> {
    let fail = |what: String| {
        Err(format!(
            "seed {:#x} (LOGREDACT_GLOB_MODEL_SEED={}): {what}\n--- what was done ---\n{}\n--- logs ---\n{}",
            s.seed,
            s.seed,
            s.history.join("\n"),
            s.logs
        ))
    };
    let expected: HashMap<usize, Vec<Vec<u8>>> = s
        .files
        .iter()
        .chain(&s.retired)
        .map(|f| {
            (
                f.id,
                f.lines.iter().map(|l| reference_redaction(l)).collect(),
            )
        })
        .collect();
    let mut next: HashMap<usize, usize> = HashMap::new();
    if !s.output.is_empty() && !s.output.ends_with(b"\n") {
        return fail("the output ends inside a line".into());
    }
    for line in s.output.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let parsed = text.strip_prefix('F').and_then(|rest| {
            let (id, rest) = rest.split_once(" L")?;
            let (number, _) = rest.split_once(' ')?;
            Some((id.parse::<usize>().ok()?, number.parse::<usize>().ok()?))
        });
        let Some((id, number)) = parsed else {
            return fail(format!("a line no file holds: {text:?}"));
        };
        let want = next.entry(id).or_insert(0);
        if number != *want {
            return fail(format!(
                "file F{id}: line {number} where line {want} was due (lost, repeated or out of order): {text:?}"
            ));
        }
        match expected.get(&id).and_then(|lines| lines.get(number)) {
            Some(exact) if exact.as_slice() == line => *want += 1,
            other => {
                return fail(format!(
                    "file F{id} line {number}: got {text:?}, want {:?}",
                    other.map(|l| String::from_utf8_lossy(l).into_owned())
                ));
            }
        }
    }
    for (id, lines) in &expected {
        let got = next.get(id).copied().unwrap_or(0);
        if got != lines.len() {
            return fail(format!(
                "file F{id}: {got} of {} lines written",
                lines.len()
            ));
        }
    }
    let mut written = vec![s.output.clone(), s.logs.clone().into_bytes()];
    for entry in std::fs::read_dir(&s.state).into_iter().flatten().flatten() {
        written.push(std::fs::read(entry.path()).unwrap_or_default());
    }
    for token in &s.tokens {
        let hex = &token.as_bytes()[4..];
        for window in hex.windows(8) {
            if written.iter().any(|w| w.windows(8).any(|x| x == window)) {
                return fail(format!(
                    "8 hex digits of a token were written: {}",
                    String::from_utf8_lossy(window)
                ));
            }
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

#[test]
fn pattern_model() {
    let seeds: Vec<u64> = match env_u64("LOGREDACT_GLOB_MODEL_SEED") {
        Some(seed) => vec![seed],
        None => {
            let base = env_u64("LOGREDACT_GLOB_MODEL_BASE").unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
            let runs = env_u64("LOGREDACT_GLOB_MODEL_RUNS").unwrap_or(6);
            (0..runs)
                .map(|i| base.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i))
                .collect()
        }
    };
    let chunks: Vec<Vec<u64>> = seeds
        .chunks(seeds.len().div_ceil(3))
        .map(<[u64]>::to_vec)
        .collect();
    let threads: Vec<_> = chunks
        .into_iter()
        .map(|seeds| {
            std::thread::spawn(move || {
                seeds
                    .into_iter()
                    .map(|seed| (seed, run_scenario(seed)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut failures = Vec::new();
    for thread in threads {
        for (seed, result) in thread.join().unwrap() {
            match result {
                Ok(summary) => eprintln!("seed {seed:#x}: {summary}"),
                Err(failure) => failures.push(failure),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
