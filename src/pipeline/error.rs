//! How the pipeline fails: the error it returns, and the record of the first
//! failure, which every task of a run may write and the run reports once.

use std::io;
use std::sync::{Mutex, PoisonError};

/// The pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A source or output could not be opened.
    #[error("{what}: {source}")]
    Start {
        /// What was being opened.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// Writing an output failed.
    #[error("writing {output}: {source}")]
    Write {
        /// The output.
        output: String,
        /// The error.
        source: io::Error,
    },
    /// An input could not be read. Its stream stopped; the others went on.
    #[error("reading {input}: {source}")]
    Read {
        /// The input.
        input: String,
        /// The error.
        source: io::Error,
    },
    /// The last checkpoint could not be saved.
    #[error(
        "the checkpoints in {dir} could not be saved at the end: a restart writes again what was written since the last one saved"
    )]
    Checkpoint {
        /// The state directory.
        dir: String,
    },
    /// Streams could not be flushed within the grace period.
    #[error("the output did not take the remaining data within the grace period")]
    Stalled,
}

impl PipelineError {
    /// The reader of the output went away (EPIPE): not a failure of ours,
    /// and nothing more can be delivered.
    pub fn is_output_closed(&self) -> bool {
        matches!(self, PipelineError::Write { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<crate::source::OpenError> for PipelineError {
    fn from(error: crate::source::OpenError) -> PipelineError {
        PipelineError::Start {
            what: error.what,
            source: error.source,
        }
    }
}

/// The first error of a run. Later ones are consequences (or at least less
/// telling), so only the first is kept.
#[derive(Debug, Default)]
pub(crate) struct FirstFailure(Mutex<Option<PipelineError>>);

impl FirstFailure {
    /// Keeps `error` unless an earlier one is kept already.
    pub(crate) fn record(&self, error: PipelineError) {
        let mut failure = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if failure.is_none() {
            *failure = Some(error);
        }
    }

    /// The run's outcome: the first error, if any.
    pub(crate) fn outcome(&self) -> Result<(), PipelineError> {
        match self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_one_reported() {
        let failure = FirstFailure::default();
        assert!(failure.outcome().is_ok());
        failure.record(PipelineError::Stalled);
        failure.record(PipelineError::Checkpoint { dir: "d".into() });
        let error = failure.outcome().unwrap_err();
        assert_eq!(
            error.to_string(),
            "the output did not take the remaining data within the grace period"
        );
    }

    #[test]
    fn only_a_broken_pipe_on_write_is_the_reader_going_away() {
        let write = |kind| PipelineError::Write {
            output: "stdout".into(),
            source: io::Error::from(kind),
        };
        assert!(write(io::ErrorKind::BrokenPipe).is_output_closed());
        assert!(!write(io::ErrorKind::Other).is_output_closed());
        let read = PipelineError::Read {
            input: "-".into(),
            source: io::Error::from(io::ErrorKind::BrokenPipe),
        };
        assert!(!read.is_output_closed());
    }
}
