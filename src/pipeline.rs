//! The pipeline: source → scanner → sink, one way, with bounded channels at
//! the edges so that a slow output slows the reading of input and nothing is
//! ever dropped.

use std::io;
use std::sync::Arc;

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

/// Redacts one stream from `source` into `sink`, chunk by chunk: each chunk's
/// decided bytes are handed to the sink before the next chunk is awaited.
pub async fn redact_stream<R, W>(
    stream: &str,
    output: &str,
    source: &mut R,
    sink: &mut W,
    mut scanner: Scanner,
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
    while let Some(chunk) = source.next_chunk().await.map_err(read_error)? {
        let mut builder = BatchBuilder::new(&chunk);
        scanner.feed(&chunk, &mut builder);
        let (batch, _detections) = builder.finish();
        sink.send(batch).await.map_err(write_error)?;
    }
    let mut builder = BatchBuilder::detached();
    let stats = scanner.finish(&mut builder);
    let (batch, _detections) = builder.finish();
    sink.send(batch).await.map_err(write_error)?;
    Ok(stats)
}

/// Pipe mode: standard input to standard output.
pub async fn run_pipe(rules: Arc<RuleSet>) -> Result<ScanStats, PipelineError> {
    let start_error = |what: &str| {
        let what = what.to_string();
        move |source| PipelineError::Start { what, source }
    };
    let mut source = StdinSource::spawn().map_err(start_error("stdin reader"))?;
    let mut sink = StdoutSink::spawn().map_err(start_error("stdout writer"))?;
    let scanner = Scanner::new(rules, DetectionMode::MaskOnly);
    let stats = redact_stream("stdin", "stdout", &mut source, &mut sink, scanner).await?;
    sink.close().await.map_err(|source| PipelineError::Write {
        output: "stdout".into(),
        source,
    })?;
    Ok(stats)
}
