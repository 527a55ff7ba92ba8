//! Files the tests share: the repository's own files, scratch directories,
//! logs to append to, checkpoints to read, and locks between test processes.

use std::path::{Path, PathBuf};

/// A file or folder of the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A text file, or a failure that names it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The target directory (`CARGO_TARGET_TMPDIR` is its `tmp` subdirectory).
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// A fresh, empty scratch directory for one test, under the target
/// directory: `<tmp>/<test binary>/<process id>/<name>`. The process id keeps
/// two runs of the same test binary (two checkouts' CI, or a rerun while one
/// is going) out of each other's files; the directories of runs that have
/// ended are removed on the first call, and the last run's stay to be read.
pub fn scratch(name: &str) -> PathBuf {
    static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let binary = module_path!().split("::").next().unwrap_or("tests");
        let all = Path::new(env!("CARGO_TARGET_TMPDIR")).join(binary);
        for entry in std::fs::read_dir(&all).into_iter().flatten().flatten() {
            let alive = entry
                .file_name()
                .to_str()
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        all.join(std::process::id().to_string())
    });
    let dir = run.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Appends `bytes` to the file at `path`, creating it if need be.
pub fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// The one checkpoint file in `state`, if logredact has saved one yet. Found
/// by listing rather than by computing its name, so that the tests depend on
/// the checkpoint's JSON and not on how logredact names the file.
pub fn checkpoint_file(state: &Path) -> Option<PathBuf> {
    std::fs::read_dir(state)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|path| path.extension().is_some_and(|x| x == "json"))
}

/// The offset of the one checkpoint in `state`, if there is one yet.
pub fn checkpoint_offset(state: &Path) -> Option<u64> {
    let file = checkpoint_file(state)?;
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    value["offset"].as_u64()
}

/// Waits until the checkpoint in `state` is at `offset`.
pub fn wait_for_checkpoint(state: &Path, offset: u64) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while checkpoint_offset(state) != Some(offset) {
        assert!(
            std::time::Instant::now() < until,
            "the checkpoint is at {:?}, not {offset}",
            checkpoint_offset(state)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether `lock_file` waits for a lock another process holds.
pub enum Wait {
    Yes,
    No,
}

/// An exclusive lock on the file at `path` (created if need be), held while
/// the returned file is open. The kernel releases it when the holder exits,
/// however it exits, so a crashed test never leaves a stale lock behind.
pub fn lock_file(path: &Path, wait: Wait) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let operation = match wait {
        Wait::Yes => libc::LOCK_EX,
        Wait::No => libc::LOCK_EX | libc::LOCK_NB,
    };
    // SAFETY: flock takes a descriptor this function owns; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// Writes `path`: the shipped configuration (its rules), less its `inputs:`
/// line (standard input is the default anyway), then `extra` (YAML keys).
pub fn shipped_config_with(path: &Path, extra: &str) {
    let shipped = read(&repo_path("config/logredact.yaml")).replace("inputs: ['-']\n", "");
    std::fs::write(path, format!("{shipped}\n{extra}")).unwrap();
}
