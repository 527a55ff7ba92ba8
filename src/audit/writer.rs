//! Writing the audit stream, off the data path.
//!
//! Records are queued on a bounded channel and written by a dedicated thread,
//! flushed whenever the queue runs empty. Streams never wait for the audit: if
//! the writer falls more than `QUEUE_RECORDS` records behind, records are
//! dropped, counted, and reported in the log — the redacted output is never
//! delayed by the audit.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, LineWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use crate::config::AuditTarget;
use crate::metrics::{ErrorKind, Metrics};

/// Records the writer may fall behind by before records are dropped.
const QUEUE_RECORDS: usize = 65_536;

/// Counters shared by the handles and the writer.
#[derive(Default)]
struct AuditCounters {
    written: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
}

/// Where streams send their audit records; cheap to clone.
#[derive(Clone)]
pub struct AuditHandle {
    records: SyncSender<Vec<u8>>,
    counters: Arc<AuditCounters>,
    metrics: Arc<Metrics>,
}

impl AuditHandle {
    /// Queues one record line without waiting.
    pub fn record(&self, line: Vec<u8>) {
        match self.records.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.error(ErrorKind::Audit);
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::error!(dropped, "audit writer is behind; audit records dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.error(ErrorKind::Audit);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The audit writer thread.
pub struct AuditWriter {
    handle: Option<AuditHandle>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWriter {
    /// Opens the audit target (a file is appended to) and starts the writer.
    pub fn start(target: &AuditTarget, metrics: Arc<Metrics>) -> io::Result<AuditWriter> {
        // Standard error is shared with the program's own log: write whole
        // lines only, so that records and log lines never interleave.
        let output: Box<dyn Write + Send> = match target {
            AuditTarget::Stderr => Box::new(LineWriter::new(io::stderr())),
            AuditTarget::File(path) => {
                Box::new(BufWriter::with_capacity(64 * 1024, open_append(path)?))
            }
        };
        let (records, receiver) = mpsc::sync_channel(QUEUE_RECORDS);
        let counters = Arc::new(AuditCounters::default());
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn({
                let counters = Arc::clone(&counters);
                let metrics = Arc::clone(&metrics);
                move || write_loop(output, receiver, &counters, &metrics)
            })?;
        Ok(AuditWriter {
            handle: Some(AuditHandle {
                records,
                counters,
                metrics,
            }),
            thread: Some(thread),
        })
    }

    /// A handle for a stream.
    pub fn handle(&self) -> AuditHandle {
        self.handle
            .clone()
            .unwrap_or_else(|| unreachable!("handle taken only by finish"))
    }

    /// Writes everything queued and stops. Every other handle must have
    /// been dropped.
    pub fn finish(mut self) -> AuditOutcome {
        let counters = self.handle.take().map(|handle| handle.counters);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        counters.map_or_else(AuditOutcome::default, |c| AuditOutcome {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
        })
    }
}

/// What became of the audit records, once the writer has stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditOutcome {
    /// Records written and flushed.
    pub written: u64,
    /// Records dropped because the writer was behind.
    pub dropped: u64,
    /// Records whose write or flush failed (a full disk, a closed pipe).
    pub lost: u64,
}

impl AuditOutcome {
    /// Whether every detection has its record.
    pub fn is_complete(&self) -> bool {
        self.dropped == 0 && self.lost == 0
    }
}

/// Opens the audit file to append, creating it private (0600: records hold
/// fingerprints and stream names). A symbolic link at the path is followed
/// only with a warning: one planted beside the file would redirect records.
fn open_append(path: &Path) -> io::Result<File> {
    open_append_as(path, Creation::CreateIfMissing)
}

/// Whether the audit file opens at start: a file that is there is opened to
/// append (and closed; nothing is written), one that is not must be
/// creatable in its directory. Nothing is created.
pub(crate) fn check(target: &AuditTarget) -> io::Result<()> {
    let AuditTarget::File(path) = target else {
        return Ok(());
    };
    match open_append_as(path, Creation::ExistingOnly) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => crate::deployment::creatable_file(path),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot open it to append: {e}"),
        )),
    }
}

/// Whether opening a file creates it.
#[derive(Clone, Copy)]
enum Creation {
    CreateIfMissing,
    ExistingOnly,
}

/// [`open_append`], or with [`Creation::ExistingOnly`] the same open of a
/// file that is already there.
fn open_append_as(path: &Path, creation: Creation) -> io::Result<File> {
    let open = |flags| {
        OpenOptions::new()
            .create(matches!(creation, Creation::CreateIfMissing))
            .append(true)
            .mode(0o600)
            .custom_flags(flags)
            .open(path)
    };
    match open(libc::O_NOFOLLOW) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            tracing::warn!(path = %crate::scrub::scrub(&path.display().to_string()), "the audit path is a symbolic link; following it");
            open(0)
        }
        opened => opened,
    }
}

fn write_loop(
    mut output: Box<dyn Write + Send>,
    receiver: Receiver<Vec<u8>>,
    counters: &AuditCounters,
    metrics: &Metrics,
) {
    // A record counts as written once a flush has carried it to the file;
    // records buffered when a write or flush fails count as lost (a later
    // retry of the same buffer may still write some: the count errs high).
    let mut failing = false;
    let mut buffered = 0u64;
    let mut outcome = |result: io::Result<()>, records: u64| match result {
        Ok(()) => {
            counters.written.fetch_add(records, Ordering::Relaxed);
            failing = false;
        }
        Err(e) => {
            counters.lost.fetch_add(records, Ordering::Relaxed);
            metrics.error(ErrorKind::Audit);
            if !failing {
                tracing::error!(error = %e, "cannot write the audit stream");
            }
            failing = true;
        }
    };
    while let Ok(line) = receiver.recv() {
        let mut next = Some(line);
        // Flush when nothing else is waiting, so records appear promptly.
        while let Some(line) = next.take().or_else(|| receiver.try_recv().ok()) {
            match output.write_all(&line) {
                Ok(()) => buffered += 1,
                Err(e) => {
                    outcome(Err(e), buffered + 1);
                    buffered = 0;
                }
            }
        }
        outcome(output.flush(), std::mem::take(&mut buffered));
    }
}
