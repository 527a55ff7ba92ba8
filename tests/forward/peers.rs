//! The Fluent forward peers the tests talk to, none of them written against
//! logredact's code: `peer.py` (beside this file) on the PyPI `msgpack`
//! library and Fluentd's own `fluent-logger` client, pinned in
//! `requirements.txt`. The tests install them themselves into a virtual
//! environment under the target directory (`target/forward-venv`), once per
//! change of the requirements file, under a lock file so that concurrent
//! test processes do not race. A test fails (it never skips) when they
//! cannot be installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    Running, Wait, lock_file, output_of, repo_path, target_dir, transcript, venv_with,
};

/// The virtual environment's Python, installed on first use.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(install) {
        Ok(path) => path,
        Err(message) => panic!(
            "the forward peers (tests/forward/requirements.txt: msgpack, fluent-logger) could \
             not be installed into the target directory; they need python3 with the venv \
             module and access to PyPI.\n{message}"
        ),
    }
}

fn install() -> Result<PathBuf, String> {
    let venv = venv_with(
        "forward-venv",
        "tests/forward/requirements.txt",
        "the forward peers",
    )?;
    let python = venv.join("bin/python");
    let check = Command::new(&python)
        .args([
            "-c",
            "import msgpack, fluent.sender; print(msgpack.version)",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !check.status.success() {
        return Err(format!("the peers do not import\n{}", transcript(&check)));
    }
    Ok(python)
}

/// The npm packages of `tests/forward/npm` (Fluentd's `fluent-logger` for
/// Node.js, which can require acknowledgements), installed by `npm ci` from
/// the committed lock file into `target/forward-npm`, once per change of
/// the lock file: its `node_modules` is the `NODE_PATH` of the scripts.
pub fn npm_peers() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(install_npm) {
        Ok(path) => path,
        Err(message) => panic!(
            "the npm forward peer (tests/forward/npm: fluent-logger) could not be installed \
             into the target directory; it needs node and npm with access to the npm \
             registry.\n{message}"
        ),
    }
}

fn install_npm() -> Result<PathBuf, String> {
    let source = repo_path("tests/forward/npm");
    let lock = fs::read_to_string(source.join("package-lock.json"))
        .map_err(|e| format!("cannot read tests/forward/npm/package-lock.json: {e}"))?;
    let target = target_dir();
    let dir = target.join("forward-npm");
    let marker = dir.join(".installed-package-lock.json");
    let _lock = lock_file(&target.join("forward-npm.lock"), Wait::Yes)
        .map_err(|e| format!("cannot lock forward-npm.lock: {e}"))?;
    if fs::read_to_string(&marker).ok().as_deref() == Some(lock.as_str()) {
        return Ok(dir);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        fs::copy(source.join(file), dir.join(file))
            .map_err(|e| format!("cannot copy {file}: {e}"))?;
    }
    let installed = output_of(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir),
        "npm ci",
    )?;
    if !installed.status.success() {
        return Err(format!("npm ci failed\n{}", transcript(&installed)));
    }
    fs::write(&marker, &lock).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(dir)
}

/// `peer.py` with `args`.
pub fn peer(args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command
        .arg(repo_path("tests/forward/peer.py"))
        .args(args)
        .stdin(Stdio::null());
    command
}

/// The next hop: a receiver on `port` writing each entry it receives as a
/// JSON line to `out`, started and listening.
pub fn receiver(port: u16, out: &Path, extra: &[&str]) -> Running {
    let port = port.to_string();
    let mut args = vec!["receive", "--port", &port, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut run = Running::start(&mut peer(&args), Stdio::null());
    let first = run.read_at_least(b"listening\n".len(), Duration::from_secs(60));
    assert!(
        first.starts_with(b"listening"),
        "the receiver did not start: {}",
        run.errors()
    );
    run
}

/// The entries a receiver wrote to `out` so far (whole lines only: the
/// last one may be being written).
pub fn received(out: &Path) -> Vec<Value> {
    let text = fs::read_to_string(out).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// Waits until the receiver has written `count` entries to `out`.
pub fn wait_for_entries(out: &Path, count: usize, deadline: Duration) -> Vec<Value> {
    let until = Instant::now() + deadline;
    loop {
        let now = received(out);
        if now.len() >= count || Instant::now() > until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a sender to its end: its JSON lines.
pub fn send(args: &[&str]) -> Vec<Value> {
    let output = peer(args).output().expect("run peer.py");
    assert!(output.status.success(), "{}", transcript(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}
