//! The vendors' definitions, from PyPI, pinned in
//! `tests/export/requirements.txt`: installed by the tests themselves into a
//! virtual environment under the target directory (`target/export-venv`),
//! once per change of the requirements file, under a lock file so that
//! concurrent test processes do not race. Nothing is installed on the
//! system. A test fails (it never skips) when they cannot be installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::{output_of, repo_path, transcript, venv_with};

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

/// Creates the virtual environment and installs the requirements into it,
/// unless it already holds exactly this requirements file.
fn install() -> Result<PathBuf, String> {
    let venv = venv_with(
        "export-venv",
        "tests/export/requirements.txt",
        "the vendors' definitions",
    )?;
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
