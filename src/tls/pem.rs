//! Reading PEM certificate, key and CA files, with errors that name the
//! file and the setting and never quote what the file holds: the parser's
//! own messages can quote a line of the file, and a line of a key file is
//! part of the key.

use std::fmt;
use std::io::Read;
use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, RootCertStore};

use crate::tls::Identity;

/// A certificate, key or CA file larger than this is refused unread: no
/// such file is anywhere near it (a system CA bundle is about 200 KiB).
const MAX_FILE: u64 = 16 << 20;

/// A TLS setting could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The setting at fault, as its key is named in the configuration
    /// (`cert`, `key`, `ca`, `client_ca`).
    pub setting: &'static str,
    /// Why, with the file's path.
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(setting: &'static str, message: impl Into<String>) -> LoadError {
        LoadError {
            setting,
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl std::error::Error for LoadError {}

/// The bytes of the file at `path`, for the setting `setting`.
fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, LoadError> {
    let failed = |e: &dyn fmt::Display| {
        LoadError::new(setting, format!("cannot read {}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(&e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(failed(&format!(
            "larger than {} MiB: not a PEM file",
            MAX_FILE >> 20
        )));
    }
    Ok(bytes)
}

/// What is wrong with a PEM file, without any of its content.
fn describe(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "not a valid PEM file".into(),
    }
}

/// The certificates of the PEM file at `path`: at least one.
fn certificates(
    path: &Path,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let bytes = read(path, setting)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::new(setting, format!("{}: {}", path.display(), describe(&e))))?;
    if certificates.is_empty() {
        return Err(LoadError::new(
            setting,
            format!(
                "{}: no certificate in it (expected PEM CERTIFICATE sections)",
                path.display()
            ),
        ));
    }
    Ok(certificates)
}

/// The first private key of the PEM file at `path`.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    let bytes = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => "no private key in it (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)".to_string(),
            other => describe(&other),
        };
        LoadError::new("key", format!("{}: {why}", path.display()))
    })
}

/// A certificate chain and its key.
pub(super) fn identity(
    identity: &Identity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), LoadError> {
    Ok((
        certificates(&identity.cert, "cert")?,
        private_key(&identity.key)?,
    ))
}

/// Why rustls refused a chain and key it was given: the key is of a kind
/// it cannot use, or is not the certificate's.
pub(super) fn identity_error(identity: &Identity, error: &rustls::Error) -> LoadError {
    let message = match error {
        rustls::Error::InconsistentKeys(_) => format!(
            "{} is not the key of the certificate in {}",
            identity.key.display(),
            identity.cert.display()
        ),
        other => format!("{}: {other}", identity.key.display()),
    };
    LoadError::new("key", message)
}

/// The trust anchors of the CA bundle at `path`: every certificate in it
/// must be usable as one.
pub(super) fn roots(path: &Path, setting: &'static str) -> Result<RootCertStore, LoadError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in certificates(path, setting)?.into_iter().enumerate() {
        roots.add(certificate).map_err(|e| {
            LoadError::new(
                setting,
                format!(
                    "{}: certificate #{} is not usable as a CA certificate: {e}",
                    path.display(),
                    index + 1
                ),
            )
        })?;
    }
    Ok(roots)
}
