//! The pipeline: source → scanner → sink, one way, with bounded channels at
//! the edges so that a slow output slows the reading of input and nothing is
//! ever dropped. Detections go to the audit writer, off the data path.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use crate::audit::{ArrivalClock, AuditHandle, AuditRecord, rfc3339_millis};
use crate::scan::detection::Detection;
use crate::scan::rule::RuleSet;
use crate::scan::scanner::{DetectionMode, ScanStats, Scanner};
use crate::sink::{BatchBuilder, BatchSink, StdoutSink};
use crate::source::{ChunkSource, StdinSource};

/// A stream or output failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Reading a stream failed.
    #[error("reading {stream}: {source}")]
    Read {
        /// The stream id (`stdin`, `file:<path>`, `tcp:<peer>`).
        stream: String,
        /// The error.
        source: io::Error,
    },
    /// Writing an output failed.
    #[error("writing {output}: {source}")]
    Write {
        /// The output (`stdout`, `file:<path>`, `tcp:<addr>`).
        output: String,
        /// The error.
        source: io::Error,
    },
    /// A source or sink could not be started.
    #[error("starting {what}: {source}")]
    Start {
        /// What was being started.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl PipelineError {
    /// The reader of the output went away (EPIPE): not a failure of ours,
    /// and nothing more can be delivered.
    pub fn is_output_closed(&self) -> bool {
        matches!(self, PipelineError::Write { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// What every stream shares: the rules and where detections go.
#[derive(Clone)]
pub struct StreamEnv {
    /// The compiled rules.
    pub rules: Arc<RuleSet>,
    /// The audit stream, if enabled.
    pub audit: Option<AuditHandle>,
}

impl StreamEnv {
    /// Detections are classified only when someone reads them.
    fn detection_mode(&self) -> DetectionMode {
        if self.audit.is_some() {
            DetectionMode::Classify
        } else {
            DetectionMode::MaskOnly
        }
    }

    /// A scanner for a new stream.
    pub fn scanner(&self) -> Scanner {
        Scanner::new(Arc::clone(&self.rules), self.detection_mode())
    }
}

/// Sends a stream's detections to the audit writer, stamped with the time
/// their bytes arrived.
struct DetectionRecorder<'a> {
    stream: &'a str,
    audit: Option<&'a AuditHandle>,
    clock: ArrivalClock,
}

impl DetectionRecorder<'_> {
    fn arrived(&mut self, end: u64) {
        if self.audit.is_some() {
            self.clock.arrived(end, SystemTime::now());
        }
    }

    fn record(&self, detections: Vec<Detection>) {
        let Some(audit) = self.audit else {
            return;
        };
        for detection in detections {
            let ts = rfc3339_millis(self.clock.time_of(detection.offset));
            audit.record(AuditRecord::new(&detection, self.stream, ts).to_line());
        }
    }
}

/// Redacts one stream from `source` into `sink`, chunk by chunk: each chunk's
/// decided bytes are handed to the sink before the next chunk is awaited.
pub async fn redact_stream<R, W>(
    env: &StreamEnv,
    stream: &str,
    output: &str,
    source: &mut R,
    sink: &mut W,
) -> Result<ScanStats, PipelineError>
where
    R: ChunkSource,
    W: BatchSink,
{
    let read_error = |source| PipelineError::Read {
        stream: stream.to_string(),
        source,
    };
    let write_error = |source| PipelineError::Write {
        output: output.to_string(),
        source,
    };
    let mut scanner = env.scanner();
    let mut recorder = DetectionRecorder {
        stream,
        audit: env.audit.as_ref(),
        clock: ArrivalClock::new(env.rules.context_bytes() as u64),
    };
    let mut received = 0u64;
    while let Some(chunk) = source.next_chunk().await.map_err(read_error)? {
        received += chunk.len() as u64;
        recorder.arrived(received);
        let mut builder = BatchBuilder::new(&chunk);
        scanner.feed(&chunk, &mut builder);
        let (batch, detections) = builder.finish();
        sink.send(batch).await.map_err(write_error)?;
        recorder.record(detections);
    }
    let mut builder = BatchBuilder::detached();
    let stats = scanner.finish(&mut builder);
    let (batch, detections) = builder.finish();
    sink.send(batch).await.map_err(write_error)?;
    recorder.record(detections);
    Ok(stats)
}

/// Pipe mode: standard input to standard output.
pub async fn run_pipe(env: StreamEnv) -> Result<ScanStats, PipelineError> {
    let start_error = |what: &str| {
        let what = what.to_string();
        move |source| PipelineError::Start { what, source }
    };
    let mut source = StdinSource::spawn().map_err(start_error("stdin reader"))?;
    let mut sink = StdoutSink::spawn().map_err(start_error("stdout writer"))?;
    let stats = redact_stream(&env, "stdin", "stdout", &mut source, &mut sink).await?;
    sink.close().await.map_err(|source| PipelineError::Write {
        output: "stdout".into(),
        source,
    })?;
    Ok(stats)
}
