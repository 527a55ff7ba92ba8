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

use crate::common::{Running, Wait, lock_file, repo_path, target_dir, transcript};

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
    let requirements_path = repo_path("tests/forward/requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("forward-venv");
    let marker = venv.join(".installed-requirements.txt");
    let _lock = lock_file(&target.join("forward-venv.lock"), Wait::Yes)
        .map_err(|e| format!("cannot lock forward-venv.lock: {e}"))?;
    if fs::read_to_string(&marker).ok().as_deref() != Some(requirements.as_str()) {
        if venv.exists() {
            fs::remove_dir_all(&venv)
                .map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
        }
        let run = |command: &mut Command, what: &str| -> Result<(), String> {
            let output = command
                .output()
                .map_err(|e| format!("cannot run {what}: {e}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("{what} failed\n{}", transcript(&output)))
            }
        };
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
        run(
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--disable-pip-version-check"])
                .args(["--no-input", "--requirement"])
                .arg(&requirements_path),
            "pip install --requirement tests/forward/requirements.txt",
        )?;
        fs::write(&marker, &requirements)
            .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    }
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
