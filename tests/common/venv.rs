//! Python packages the tests need, from PyPI, pinned in a requirements
//! file: installed by the tests themselves into a virtual environment under
//! the target directory, once per change of the requirements file, under a
//! lock file so that concurrent test processes do not race. Nothing is
//! installed on the system.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Instant;

use super::{Wait, lock_file, repo_path, target_dir, transcript};

/// Runs `command`, describing it as `what` in any failure.
pub fn output_of(command: &mut Command, what: &str) -> Result<Output, String> {
    command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))
}

/// The virtual environment `target/NAME` holding the packages of the
/// repository's requirements file `requirements`, created (or made again)
/// unless it already holds exactly that file. `what` names the packages in
/// the message that says they were installed.
pub fn venv_with(name: &str, requirements: &str, what: &str) -> Result<PathBuf, String> {
    let requirements_path = repo_path(requirements);
    let pinned = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join(name);
    let marker = venv.join(".installed-requirements.txt");
    let _lock = lock_file(&target.join(format!("{name}.lock")), Wait::Yes)
        .map_err(|e| format!("cannot lock {name}.lock: {e}"))?;
    if fs::read_to_string(&marker).ok().as_deref() == Some(pinned.as_str()) {
        return Ok(venv);
    }
    let started = Instant::now();
    if venv.exists() {
        fs::remove_dir_all(&venv).map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
    }
    let created = output_of(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    if !created.status.success() {
        return Err(format!("python3 -m venv failed\n{}", transcript(&created)));
    }
    let installed = output_of(
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(["--no-input", "--requirement"])
            .arg(&requirements_path),
        "pip install",
    )?;
    if !installed.status.success() {
        return Err(format!(
            "pip install --requirement {requirements} failed\n{}",
            transcript(&installed)
        ));
    }
    fs::write(&marker, &pinned).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    eprintln!(
        "installed {what} into {} in {:.1} s",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(venv)
}
