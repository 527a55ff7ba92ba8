//! The vendors' definitions, from PyPI, pinned in
//! `tests/export/requirements.txt`: installed by the tests themselves into a
//! virtual environment under the target directory (`target/export-venv`),
//! once per change of the requirements file, under a lock file so that
//! concurrent test processes do not race. Nothing is installed on the
//! system. A test fails (it never skips) when they cannot be installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{Wait, lock_file, repo_path, target_dir, transcript};

/// The virtual environment's Python, with the requirements installed.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(install) {
        Ok(path) => path,
        Err(message) => panic!(
            "the vendors' definitions (tests/export/requirements.txt) could not be installed \
             into the target directory; they need python3 with the venv module and access \
             to PyPI.\n{message}"
        ),
    }
}

fn output_of(command: &mut Command, what: &str) -> Result<Output, String> {
    command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))
}

/// Creates the virtual environment and installs the requirements into it,
/// unless it already holds exactly this requirements file.
fn install() -> Result<PathBuf, String> {
    let requirements_path = repo_path("tests/export/requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("export-venv");
    let marker = venv.join(".installed-requirements.txt");
    let _lock = lock_file(&target.join("export-venv.lock"), Wait::Yes)
        .map_err(|e| format!("cannot lock export-venv.lock: {e}"))?;
    if fs::read_to_string(&marker).ok().as_deref() != Some(requirements.as_str()) {
        let started = Instant::now();
        if venv.exists() {
            fs::remove_dir_all(&venv)
                .map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
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
                "pip install --requirement tests/export/requirements.txt failed\n{}",
                transcript(&installed)
            ));
        }
        fs::write(&marker, &requirements)
            .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
        eprintln!(
            "installed the vendors' definitions into {} in {:.1} s",
            venv.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let python = venv.join("bin/python");
    let imported = output_of(
        Command::new(&python).args([
            "-c",
            "import botocore, google.cloud.dlp_v2, re2, xmlschema; print(botocore.__version__)",
        ]),
        "python",
    )?;
    if !imported.status.success() {
        return Err(format!(
            "the installed packages do not import\n{}",
            transcript(&imported)
        ));
    }
    Ok(python)
}

/// Runs `tests/export/SCRIPT` with `args`.
pub fn run_script(script: &str, args: &[&Path]) -> Output {
    Command::new(python())
        .arg(repo_path(&format!("tests/export/{script}")))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"))
}
