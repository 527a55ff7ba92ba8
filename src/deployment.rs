//! What `check-config` checks of a deployment, beyond the configuration
//! itself: that a run with these settings would get past its start — the
//! state directory and the audit file can be created or written, the admin
//! endpoint and TCP inputs (plaintext or TLS) can listen, a TCP output's host
//! resolves. (The TLS certificate, key and CA files are read, and refused if
//! unusable, with the configuration itself: see `config::Config::load_tls`.)
//!
//! Each check is the run's own start-up step made without its effects: the
//! state directory is checked by `CheckpointStore::check` (the same mode and
//! lock checks as `open`), the audit file by `audit::check` (the same open,
//! without creating). Nothing is created: what is missing must be creatable
//! in its nearest existing directory, which this user must be able to write.
//! An address is bound and released at once.

use std::ffi::CString;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::app::Settings;
use crate::config::AuditTarget;
use crate::source::checkpoint::CheckpointStore;

/// What was checked, and every problem found (one message each).
#[derive(Debug, Default)]
pub struct Report {
    /// What was checked and found usable, as messages name it.
    pub checked: Vec<String>,
    /// What would stop the run, each with its reason.
    pub problems: Vec<String>,
}

/// Checks the deployment `settings` describe.
pub fn check(settings: &Settings) -> Report {
    let mut report = Report::default();
    let mut note = |what: String, result: io::Result<()>| match result {
        Ok(()) => report.checked.push(what),
        Err(e) => report.problems.push(format!("{what}: {e}")),
    };
    if let Some(dir) = &settings.topology.state_dir {
        let what = format!("state directory {}", dir.display());
        note(what, CheckpointStore::check(dir));
    }
    if let Some(target @ AuditTarget::File(path)) = &settings.audit {
        note(
            format!("audit file {}", path.display()),
            crate::audit::check(target),
        );
    }
    if let Some(address) = &settings.admin {
        note(format!("admin address {address}"), can_listen(address));
    }
    for input in &settings.topology.inputs {
        let forward = input.forward_address().map(|(address, _)| address);
        if let Some(address) = input.listen_address().or(forward) {
            note(format!("input {input}"), can_listen(address));
        }
    }
    let output = &settings.topology.output;
    let forward = output.forward_address().map(|(address, _)| address);
    if let Some(address) = output.upstream_address().or(forward) {
        let what = format!("output {}", settings.topology.output);
        note(what, resolves(address));
    }
    report
}

/// Whether a listener can be bound at `address` (bound, then released).
fn can_listen(address: &str) -> io::Result<()> {
    TcpListener::bind(address)
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen there: {e}")))
}

/// Whether the host of `address` (`HOST:PORT`) resolves to an address.
fn resolves(address: &str) -> io::Result<()> {
    let not_resolved = |e: &dyn std::fmt::Display| format!("the host does not resolve: {e}");
    let mut found = address
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), not_resolved(&e)))?;
    match found.next() {
        Some(_) => Ok(()),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            not_resolved(&"no address"),
        )),
    }
}

/// Whether this process may create and remove entries in the directory
/// `dir`.
pub(crate) fn writable_dir(dir: &Path) -> io::Result<()> {
    may_write_in(dir).map_err(|e| io::Error::new(e.kind(), format!("cannot write in it: {e}")))
}

/// `access(dir, W_OK | X_OK)`: the kernel's answer for this process's
/// user, read-only mounts included.
fn may_write_in(dir: &Path) -> io::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: access only reads the NUL-terminated path it is given.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the missing directory `dir` could be created (with its missing
/// parents, as `create_dir_all` does): its nearest existing ancestor must be
/// a directory this process can write.
pub(crate) fn creatable_dir(dir: &Path) -> io::Result<()> {
    let ancestor = dir
        .ancestors()
        .skip(1)
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.symlink_metadata().is_ok())
        .unwrap_or(Path::new("/"));
    creatable_in(ancestor)
}

/// Whether the missing file `file` could be created: its directory must be
/// there, and writable by this process.
pub(crate) fn creatable_file(file: &Path) -> io::Result<()> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Err(e) = std::fs::metadata(dir) {
        return Err(io::Error::new(
            e.kind(),
            format!("cannot create it: {}: {e}", dir.display()),
        ));
    }
    creatable_in(dir)
}

/// Whether an entry can be created in `dir`, which exists.
fn creatable_in(dir: &Path) -> io::Result<()> {
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("cannot create it: {} is not a directory", dir.display()),
        ));
    }
    may_write_in(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create it in {}: {e}", dir.display()),
        )
    })
}
