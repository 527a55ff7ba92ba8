//! promtool, Prometheus's checker, found or fetched: `PROMTOOL` if set, else
//! `promtool` on the `PATH`, else the one in Debian's `prometheus` package,
//! which the tests fetch themselves with `apt-get download` and unpack
//! (promtool alone) under the target directory (`target/tools-promtool`),
//! once, under a lock file. Nothing is installed on the system and no
//! Prometheus server is started. A test fails (it never skips) when none can
//! be had.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{Wait, lock_file, target_dir, transcript};

/// The promtool the tests run.
pub fn promtool() -> &'static Path {
    static PROMTOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PROMTOOL.get_or_init(find_or_fetch) {
        Ok(path) => path,
        Err(message) => panic!(
            "promtool is needed to check the metrics and the alert rules, and none was found \
             or could be fetched. On Debian or Ubuntu the tests fetch it themselves \
             (`apt-get download prometheus`, which needs apt's package lists: run \
             `apt-get update` once as root); elsewhere install Prometheus's promtool and put \
             it on the PATH, or set PROMTOOL to its path.\n{message}"
        ),
    }
}

fn find_or_fetch() -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("PROMTOOL") {
        Some(path) => PathBuf::from(path),
        None if runs(Path::new("promtool")) => PathBuf::from("promtool"),
        None => fetch()?,
    };
    let version = Command::new(&candidate)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", candidate.display()))?;
    if !version.status.success() {
        return Err(format!(
            "{} --version failed\n{}",
            candidate.display(),
            transcript(&version)
        ));
    }
    let text = String::from_utf8_lossy(&version.stdout);
    eprintln!("{}", text.lines().next().unwrap_or_default());
    Ok(candidate)
}

fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// promtool from Debian's `prometheus` package, unpacked under the target
/// directory unless it already is.
fn fetch() -> Result<PathBuf, String> {
    let target = target_dir();
    let dir = target.join("tools-promtool");
    let promtool = dir.join("usr/bin/promtool");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _lock = lock_file(&target.join("tools-promtool.lock"), Wait::Yes)
        .map_err(|e| format!("cannot lock tools-promtool.lock: {e}"))?;
    if runs(&promtool) {
        return Ok(promtool);
    }
    let download = dir.join("download");
    if download.exists() {
        fs::remove_dir_all(&download)
            .map_err(|e| format!("cannot remove {}: {e}", download.display()))?;
    }
    fs::create_dir_all(&download)
        .map_err(|e| format!("cannot create {}: {e}", download.display()))?;
    let apt_get_download = || {
        Command::new("apt-get")
            .args(["download", "prometheus"])
            .current_dir(&download)
            .output()
            .map_err(|e| format!("cannot run apt-get (is this Debian or Ubuntu?): {e}"))
    };
    let mut fetched = apt_get_download()?;
    if !fetched.status.success() {
        // No package lists yet (a fresh machine): read them, which works as
        // root, and try once more.
        let updated = Command::new("apt-get")
            .arg("update")
            .output()
            .map_err(|e| format!("cannot run apt-get update: {e}"))?;
        if !updated.status.success() {
            return Err(format!(
                "apt-get download prometheus failed\n{}\napt-get update failed\n{}",
                transcript(&fetched),
                transcript(&updated)
            ));
        }
        fetched = apt_get_download()?;
    }
    if !fetched.status.success() {
        return Err(format!(
            "apt-get download prometheus failed\n{}",
            transcript(&fetched)
        ));
    }
    let package = fs::read_dir(&download)
        .map_err(|e| format!("cannot list {}: {e}", download.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .ok_or("apt-get download prometheus left no .deb")?;
    let unpacked = Command::new("sh")
        .args([
            "-c",
            "dpkg-deb --fsys-tarfile \"$1\" | tar -xf - -C \"$2\" ./usr/bin/promtool",
            "sh",
        ])
        .arg(&package)
        .arg(&dir)
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if !unpacked.status.success() {
        return Err(format!(
            "unpacking promtool from {} failed\n{}",
            package.display(),
            transcript(&unpacked)
        ));
    }
    fs::remove_dir_all(&download)
        .map_err(|e| format!("cannot remove {}: {e}", download.display()))?;
    eprintln!("fetched promtool into {}", dir.display());
    Ok(promtool)
}

/// Runs promtool with `args` (and `stdin`, if any), in `dir`: (success,
/// standard output and error together).
pub fn run(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> (bool, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(bytes).expect("write to promtool");
    }
    let output = child.wait_with_output().expect("promtool's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
