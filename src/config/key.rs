//! Where the fingerprint key comes from: a key file (command line, then
//! configuration), the environment, or a random per-process key.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::error::ConfigError;
use crate::scan::fingerprint::FingerprintKey;

/// Name of the environment variable holding key material.
pub const KEY_ENV: &str = "LOGREDACT_FINGERPRINT_KEY";

/// Key material shorter than this is refused: a short key makes fingerprints
/// guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// Where the key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A key file.
    File(PathBuf),
    /// The `LOGREDACT_FINGERPRINT_KEY` environment variable.
    Environment,
    /// Generated for this process only.
    Random,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(path) => write!(f, "key file {}", path.display()),
            KeyOrigin::Environment => write!(f, "environment variable {KEY_ENV}"),
            KeyOrigin::Random => f.write_str("random per-process key"),
        }
    }
}

/// Resolves the key: `key_file` if given, else the environment variable's
/// value `from_env`, else a random key. Trailing whitespace (a final newline)
/// is not part of the key.
pub fn resolve_key(
    key_file: Option<&Path>,
    from_env: Option<&OsStr>,
) -> Result<(FingerprintKey, KeyOrigin), ConfigError> {
    if let Some(path) = key_file {
        let origin = path.display().to_string();
        let material = std::fs::read(path).map_err(|e| {
            ConfigError::new(
                &origin,
                format!("cannot read the fingerprint key file: {e}"),
            )
        })?;
        let material = material.trim_ascii_end();
        check_length(material.len()).map_err(|message| {
            ConfigError::new(&origin, format!("fingerprint key file: {message}"))
        })?;
        return Ok((
            FingerprintKey::derive(material),
            KeyOrigin::File(path.to_path_buf()),
        ));
    }
    if let Some(value) = from_env {
        let material = value.as_encoded_bytes().trim_ascii_end();
        check_length(material.len()).map_err(|message| ConfigError::new(KEY_ENV, message))?;
        return Ok((FingerprintKey::derive(material), KeyOrigin::Environment));
    }
    let key = FingerprintKey::random().map_err(|e| {
        ConfigError::new("fingerprint key", format!("cannot get random bytes: {e}"))
    })?;
    Ok((key, KeyOrigin::Random))
}

fn check_length(len: usize) -> Result<(), String> {
    if len < MIN_KEY_BYTES {
        return Err(format!(
            "the key is {len} bytes; at least {MIN_KEY_BYTES} are needed to keep fingerprints unguessable"
        ));
    }
    Ok(())
}
