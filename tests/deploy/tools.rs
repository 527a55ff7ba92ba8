//! The validators, from PyPI, pinned in `tests/tools/requirements.txt`:
//! installed by the tests themselves into a virtual environment under the
//! target directory (`target/tools-venv`), once per change of the
//! requirements file, under a lock file so that concurrent test processes
//! do not race. A test fails (it never skips) when they cannot be installed.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{Wait, lock_file, repo_path, target_dir, transcript};

/// The installed validators.
pub struct Tools {
    pub kubernetes_validate: PathBuf,
    pub hadolint: PathBuf,
}

/// Runs `command`, describing it as `what` in any failure.
pub fn output_of(command: &mut Command, what: &str) -> Result<Output, String> {
    command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))
}

/// The validators, installed on first use by this test binary.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(install_tools) {
        Ok(tools) => tools,
        Err(message) => panic!(
            "the validation tools (tests/tools/requirements.txt) could not be installed \
             into the target directory; they need python3 with the venv module and access \
             to PyPI.\n{message}"
        ),
    }
}

/// Creates the virtual environment and installs the requirements into it,
/// unless it already holds exactly this requirements file.
fn install_tools() -> Result<Tools, String> {
    let requirements_path = repo_path("tests/tools/requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("tools-venv");
    let marker = venv.join(".installed-requirements.txt");

    let _lock = lock_file(&target.join("tools-venv.lock"), Wait::Yes)
        .map_err(|e| format!("cannot lock tools-venv.lock: {e}"))?;
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
                "pip install --requirement tests/tools/requirements.txt failed\n{}",
                transcript(&installed)
            ));
        }
        fs::write(&marker, &requirements)
            .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
        eprintln!(
            "installed the validation tools into {} in {:.1} s",
            venv.display(),
            started.elapsed().as_secs_f64()
        );
    }

    let tools = Tools {
        kubernetes_validate: venv.join("bin/kubernetes-validate"),
        hadolint: venv.join("bin/hadolint"),
    };
    for (tool, what) in [
        (&tools.kubernetes_validate, "kubernetes-validate"),
        (&tools.hadolint, "hadolint"),
    ] {
        let version = output_of(Command::new(tool).arg("--version"), what)?;
        if !version.status.success() {
            return Err(format!("{what} --version failed\n{}", transcript(&version)));
        }
        eprintln!(
            "{what}: {}",
            String::from_utf8_lossy(&version.stdout).trim()
        );
    }
    Ok(tools)
}
