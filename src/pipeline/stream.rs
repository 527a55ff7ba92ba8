//! One stream, from its source through its scanner to its port: a value
//! built once with everything it needs, run to the stream's end by
//! [`Stream::run`], which also decides what a read or write failure means for
//! the run.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tracing::Instrument;

use crate::audit::{ArrivalClock, AuditHandle, AuditRecord, rfc3339_millis};
use crate::metrics::{ErrorKind, Metrics};
use crate::pipeline::context::Context;
use crate::pipeline::context::PublishedRules;
use crate::pipeline::error::PipelineError;
use crate::progress::{Ack, StreamProgress};
use crate::scan::detection::Detection;
use crate::scan::scanner::{ScanSink, Scanner};
use crate::sink::{Batch, BatchBuilder, Port};
use crate::source::{BreakReason, ChunkSource, CutReason, SourceEvent};

/// What a stream's read failure means for the run.
pub(crate) enum InputRole {
    /// A configured input, named as given: if it cannot be read, the run has
    /// failed (exit 1), though the other streams go on to their end.
    Configured(String),
    /// A connection to a TCP input: a peer that resets or breaks its
    /// connection ends that stream only.
    Connection,
}

/// Whose output a stream writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputRole {
    /// The output shared by the pipeline: if it fails, nothing more can be
    /// delivered and everything stops.
    Shared,
    /// The stream's own upstream connection: if it fails, only this stream ends.
    Own,
}

/// How a stream's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// At the stream's end, or stopped at shutdown.
    Ended,
    /// Reading or writing failed; the stream is stopped.
    Failed,
}

/// A stream ready to run.
pub(crate) struct Stream<S> {
    /// The stream id (`stdin`, `file:<path>`, `tcp:<peer>`).
    pub(crate) id: String,
    /// Where its bytes come from.
    pub(crate) source: S,
    /// What a read failure means.
    pub(crate) input: InputRole,
    /// Where its redacted bytes go.
    pub(crate) port: Port,
    /// What a write failure means.
    pub(crate) output: OutputRole,
    /// Its scanner, new or resumed at a checkpoint.
    pub(crate) scanner: Scanner,
    /// Where delivered positions are reported (a followed file).
    pub(crate) progress: Option<Arc<StreamProgress>>,
}

/// A stream's read or write failure.
pub(crate) enum StreamFailure {
    Read(io::Error),
    Write(io::Error),
}

/// Why a stream waiting for its output stops waiting.
const OUTPUT_LATE: &str = "the output did not take the data within the grace period";

impl<S: ChunkSource> Stream<S> {
    /// Runs the stream to its end, logging how it ended.
    pub(crate) async fn run(self, context: Arc<Context>) -> Finished {
        let Stream {
            id,
            mut source,
            input,
            mut port,
            output,
            scanner,
            progress,
        } = self;
        let span = tracing::info_span!("stream", stream = %id);
        let metrics = Arc::clone(&context.env.metrics);
        metrics.stream_started();
        let redaction = Redaction {
            context: &context,
            port: &mut port,
            recorder: DetectionRecorder::new(&id, &context, scanner.decided().offset),
            progress,
            buffer: BytesMut::new(),
            rules: context.env.rules.clone(),
            switching_to: None,
        };
        let result = redaction
            .run(&mut source, scanner)
            .instrument(span.clone())
            .await;
        metrics.stream_ended();
        let _entered = span.enter();
        match result {
            Ok(()) => return Finished::Ended,
            Err(StreamFailure::Read(e)) => {
                metrics.error(ErrorKind::Read);
                tracing::error!(error = %e, "reading the stream failed; the stream is stopped (undecided bytes are not written)");
                if let InputRole::Configured(input) = input {
                    context.record(PipelineError::Read { input, source: e });
                }
            }
            Err(StreamFailure::Write(e)) => {
                metrics.error(ErrorKind::Write);
                tracing::debug!(error = %e, "the output stopped");
                if output == OutputRole::Shared {
                    // Nothing more can be delivered: stop everything; the
                    // output's own error is reported when it is closed.
                    context.shutdown.abort();
                }
            }
        }
        Finished::Failed
    }
}

/// A running stream's way from scanner to port.
struct Redaction<'a> {
    context: &'a Context,
    port: &'a mut Port,
    recorder: DetectionRecorder<'a>,
    progress: Option<Arc<StreamProgress>>,
    /// Where masks and copied pieces are assembled; reused across batches.
    buffer: BytesMut,
    /// The rules in force, as reloads publish them.
    rules: watch::Receiver<PublishedRules>,
    /// The generation of the rules the scanner is switching to.
    switching_to: Option<u64>,
}

impl Redaction<'_> {
    /// Scans `source` into the port until the stream ends or is cut.
    async fn run<S: ChunkSource>(
        mut self,
        source: &mut S,
        mut scanner: Scanner,
    ) -> Result<(), StreamFailure> {
        // A reload between the scanner's making and now.
        self.follow_reload(&mut scanner, true);
        let context = self.context;
        let shutdown = &context.shutdown;
        let mut stop_requested = false;
        loop {
            let event = tokio::select! {
                biased;
                () = shutdown.deadline.cancelled() => SourceEvent::Cut(CutReason::Shutdown),
                () = shutdown.stopping.cancelled(), if !stop_requested => {
                    source.request_stop();
                    stop_requested = true;
                    continue;
                }
                event = source.next() => event.map_err(StreamFailure::Read)?,
                // A line longer than the port buffers holds the shared output
                // while it lasts: if its stream goes quiet in the middle of
                // it, the line is ended so that other streams go on.
                () = tokio::time::sleep(context.line_hold), if self.port.holds_output() => {
                    self.let_go().await?;
                    continue;
                }
            };
            match event {
                SourceEvent::Chunk(chunk) => self.chunk(&mut scanner, chunk).await?,
                SourceEvent::Break(reason) => self.break_text(&mut scanner, reason).await?,
                SourceEvent::End => return self.end(scanner).await,
                SourceEvent::Cut(reason) => return self.cut(scanner, reason).await,
            }
        }
    }

    async fn chunk(&mut self, scanner: &mut Scanner, chunk: Bytes) -> Result<(), StreamFailure> {
        self.follow_reload(scanner, false);
        self.context.env.metrics.read(chunk.len());
        self.recorder.arrived(chunk.len());
        let mut builder = BatchBuilder::new(&chunk, &mut self.buffer);
        match &self.progress {
            None => scanner.feed(&chunk, &mut builder),
            // A merged output takes whole lines only: a mark at the last
            // newline lets the checkpoint follow the lines written, not wait
            // for the partial line.
            Some(progress) => {
                let lines = memchr::memrchr(b'\n', &chunk).map_or(0, |at| at + 1);
                for part in [&chunk[..lines], &chunk[lines..]] {
                    if part.is_empty() {
                        continue;
                    }
                    scanner.feed(part, &mut builder);
                    acknowledge(&mut builder, progress, scanner);
                }
            }
        }
        note_switch(scanner, &mut self.switching_to);
        let (batch, detections) = builder.finish();
        self.deliver(batch, detections).await
    }

    /// Asks the scanner to switch to rules a reload has published since it
    /// last looked (an atomic load when nothing changed; `always` looks
    /// anyway, at the start of the stream).
    fn follow_reload(&mut self, scanner: &mut Scanner, always: bool) {
        if !always && !self.rules.has_changed().unwrap_or(false) {
            return;
        }
        let latest = self.rules.borrow_and_update().clone();
        if Arc::ptr_eq(&latest.rules, scanner.latest_rules()) {
            return;
        }
        tracing::debug!(
            offset = scanner.decided().offset,
            generation = latest.generation,
            "reloaded rules: they take over at the first point where no match is in progress"
        );
        self.recorder
            .clock
            .keep_at_least(latest.rules.context_bytes() as u64);
        scanner.switch_rules(latest.rules);
        self.switching_to = Some(latest.generation);
    }

    /// The text under the stream changed (a followed file was truncated, or
    /// the stream goes on with the next file): the undecided bytes of the
    /// old text are dropped, never judged with the new text; a line of the
    /// old text left open is ended with a newline, so that no output line
    /// holds bytes of two texts. The stream goes on at the same offset.
    async fn break_text(
        &mut self,
        scanner: &mut Scanner,
        reason: BreakReason,
    ) -> Result<(), StreamFailure> {
        let line_open = scanner.decided().byte_before.is_some_and(|b| b != b'\n');
        self.follow_reload(scanner, false);
        let mut builder = BatchBuilder::detached(&mut self.buffer);
        let dropped = scanner.restart(&mut builder);
        note_switch(scanner, &mut self.switching_to);
        if line_open {
            builder.write(b"\n");
        }
        if let Some(progress) = &self.progress {
            // The checkpoint may now move onto the next text.
            acknowledge(&mut builder, progress, scanner);
        }
        let (batch, detections) = builder.finish();
        self.deliver(batch, detections).await?;
        reason.report(dropped, &self.context.env.metrics);
        Ok(())
    }

    async fn end(mut self, scanner: Scanner) -> Result<(), StreamFailure> {
        let mut builder = BatchBuilder::detached(&mut self.buffer);
        let stats = scanner.finish(&mut builder);
        let (batch, detections) = builder.finish();
        self.hand_over_last(batch, detections).await?;
        tracing::debug!(
            bytes_in = stats.bytes_in,
            masked = stats.masked,
            "stream ended"
        );
        Ok(())
    }

    async fn cut(mut self, scanner: Scanner, reason: CutReason) -> Result<(), StreamFailure> {
        let mut builder = BatchBuilder::detached(&mut self.buffer);
        let (stats, dropped) = scanner.cut(&mut builder);
        let (batch, detections) = builder.finish();
        self.hand_over_last(batch, detections).await?;
        match reason {
            CutReason::Idle => tracing::info!(
                undecided_bytes_not_written = dropped,
                "connection idle too long; closed"
            ),
            CutReason::Shutdown if dropped > 0 && !self.context.shutdown.aborted.is_cancelled() => {
                tracing::info!(
                    undecided_bytes_not_written = dropped,
                    "stream stopped at shutdown; the bytes of a possible secret still undecided were not written"
                )
            }
            CutReason::Shutdown => tracing::debug!("stream stopped at shutdown"),
            CutReason::Released if dropped > 0 => tracing::info!(
                undecided_bytes_not_written = dropped,
                "the file ended with the bytes of a possible secret still undecided; they were not written"
            ),
            CutReason::Released => {}
        }
        tracing::debug!(
            bytes_in = stats.bytes_in,
            masked = stats.masked,
            "stream ended"
        );
        Ok(())
    }

    /// Sends the stream's last batch, then what the port still holds (a
    /// merged stream's final partial line).
    async fn hand_over_last(
        &mut self,
        batch: Batch,
        detections: Vec<Detection>,
    ) -> Result<(), StreamFailure> {
        self.send(batch).await?;
        self.context
            .within_allowance(self.port.finish(), OUTPUT_LATE)
            .await
            .map_err(StreamFailure::Write)?;
        self.recorder.record(detections);
        Ok(())
    }

    /// Ends the long line this stream holds the shared output for.
    async fn let_go(&mut self) -> Result<(), StreamFailure> {
        self.context
            .within_allowance(self.port.let_go(), OUTPUT_LATE)
            .await
            .map_err(StreamFailure::Write)?;
        tracing::debug!("a long line went quiet while holding the output; ended there");
        Ok(())
    }

    /// Hands a batch to the port and records its detections.
    async fn deliver(
        &mut self,
        batch: Batch,
        detections: Vec<Detection>,
    ) -> Result<(), StreamFailure> {
        self.send(batch).await?;
        self.recorder.record(detections);
        Ok(())
    }

    async fn send(&mut self, batch: Batch) -> Result<(), StreamFailure> {
        let len = batch.len();
        self.context
            .within_allowance(self.port.send(batch), OUTPUT_LATE)
            .await
            .map_err(StreamFailure::Write)?;
        self.context.env.metrics.written(len);
        Ok(())
    }
}

/// Logs where the reloaded rules (of generation `switching_to`) took over,
/// if they just did: the point a reference redaction of the stream is cut at
/// (old rules before, new after).
fn note_switch(scanner: &mut Scanner, switching_to: &mut Option<u64>) {
    if let Some(at) = scanner.take_switched() {
        tracing::info!(
            offset = at.offset,
            generation = switching_to.take(),
            "the reloaded rules take over here"
        );
    }
}

/// Asks the output to confirm, once it has written what `builder` holds so
/// far, that the stream is delivered up to the scanner's decided mark.
fn acknowledge(builder: &mut BatchBuilder<'_>, progress: &Arc<StreamProgress>, scanner: &Scanner) {
    builder.acknowledge(Ack::Progress {
        progress: Arc::clone(progress),
        mark: scanner.decided(),
    });
}

/// Sends a stream's detections to the metrics and the audit writer, stamped
/// with the time their bytes arrived.
struct DetectionRecorder<'a> {
    stream: &'a str,
    audit: Option<&'a AuditHandle>,
    metrics: &'a Metrics,
    clock: ArrivalClock,
    /// Stream offset just after the last byte that arrived.
    received: u64,
}

impl<'a> DetectionRecorder<'a> {
    fn new(stream: &'a str, context: &'a Context, received: u64) -> DetectionRecorder<'a> {
        DetectionRecorder {
            stream,
            audit: context.env.audit.as_ref(),
            metrics: &context.env.metrics,
            clock: ArrivalClock::new(context.env.rules.borrow().rules.context_bytes() as u64),
            received,
        }
    }

    fn arrived(&mut self, len: usize) {
        self.received += len as u64;
        if self.audit.is_some() {
            self.clock.arrived(self.received, SystemTime::now());
        }
    }

    fn record(&self, detections: Vec<Detection>) {
        for detection in detections {
            self.metrics.detected(&detection);
            if let Some(audit) = self.audit {
                let ts = rfc3339_millis(self.clock.time_of(detection.offset));
                audit.record(AuditRecord::new(&detection, self.stream, ts).to_line());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use tokio::sync::mpsc;

    use super::*;
    use crate::metrics::{Format, Metrics};
    use crate::scan::fingerprint::FingerprintKey;
    use crate::scan::rule::RuleSet;
    use crate::scan::scanner::{DetectionMode, redact};
    use crate::shutdown::Shutdown;

    /// A source that yields what it was given, in order.
    struct Chunks(VecDeque<io::Result<SourceEvent>>);

    impl Chunks {
        fn new(chunks: &[&[u8]], last: io::Result<SourceEvent>) -> Chunks {
            let mut events: VecDeque<_> = chunks
                .iter()
                .map(|c| Ok(SourceEvent::Chunk(Bytes::copy_from_slice(c))))
                .collect();
            events.push_back(last);
            Chunks(events)
        }
    }

    impl ChunkSource for Chunks {
        async fn next(&mut self) -> io::Result<SourceEvent> {
            self.0.pop_front().unwrap_or(Ok(SourceEvent::End))
        }
    }

    /// A token made at run time, so that none is committed.
    fn token() -> String {
        format!("dapi{}", &blake3::hash(b"stream test").to_hex()[..32])
    }

    fn context() -> Arc<Context> {
        let key = FingerprintKey::derive(b"a key for the stream tests");
        let rules = RuleSet::new(crate::defaults::default_rules(), key).unwrap();
        let env = crate::pipeline::StreamEnv {
            rules: watch::channel(PublishedRules {
                generation: 0,
                rules: Arc::new(rules),
            })
            .1,
            audit: None,
            metrics: Arc::new(Metrics::new()),
            mode: DetectionMode::Classify,
        };
        Context::new(
            env,
            Shutdown::new(),
            "test output".into(),
            crate::config::DEFAULT_LINE_HOLD,
        )
    }

    /// Runs `source` as a configured input with an output of its own; what
    /// reached the output, and the run's outcome.
    async fn run(
        source: Chunks,
        input: InputRole,
    ) -> (Vec<u8>, Arc<Context>, Result<(), PipelineError>) {
        let context = context();
        let (sender, mut receiver) = mpsc::channel(1024);
        let stream = Stream {
            id: "test".into(),
            source,
            input,
            port: Port::Direct(sender),
            output: OutputRole::Shared,
            scanner: context.scanner(None),
            progress: None,
        };
        stream.run(Arc::clone(&context)).await;
        let mut written = Vec::new();
        while let Ok(batch) = receiver.try_recv() {
            for piece in batch.pieces() {
                written.extend_from_slice(piece);
            }
        }
        let outcome = context.outcome();
        (written, context, outcome)
    }

    fn configured() -> InputRole {
        InputRole::Configured("file:app.log".into())
    }

    #[tokio::test]
    async fn a_token_cut_across_chunks_anywhere_is_masked_as_if_whole() {
        let input = format!("first\nAuthorization: Bearer {} tail\n", token());
        let input = input.as_bytes();
        let expected = redact(&context().env.rules.borrow().rules, input);
        assert!(
            !expected
                .windows(8)
                .any(|w| token().as_bytes().windows(8).any(|t| t == w))
        );
        for at in 1..input.len() {
            let source = Chunks::new(&[&input[..at], &input[at..]], Ok(SourceEvent::End));
            let (written, context, outcome) = run(source, configured()).await;
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&expected),
                "cut at {at}"
            );
            assert!(outcome.is_ok());
            let metrics = context.env.metrics.render(Format::OpenMetrics);
            assert!(metrics.contains("rule=\"databricks-pat\""), "{metrics}");
        }
    }

    #[tokio::test]
    async fn a_cut_in_the_middle_of_a_token_writes_what_is_decided_only() {
        let token = token();
        let (decided, undecided) = ("one\nBearer ", &token[..20]);
        let source = Chunks::new(
            &[decided.as_bytes(), undecided.as_bytes()],
            Ok(SourceEvent::Cut(CutReason::Shutdown)),
        );
        let (written, _, outcome) = run(source, configured()).await;
        assert_eq!(written, decided.as_bytes());
        assert!(outcome.is_ok());
    }

    #[tokio::test]
    async fn a_break_drops_the_undecided_bytes_and_ends_the_open_line() {
        let token = token();
        let old = format!("one\nkey {}", &token[..20]);
        let mut source = Chunks::new(
            &[old.as_bytes()],
            Ok(SourceEvent::Break(BreakReason::Truncated)),
        );
        source
            .0
            .push_back(Ok(SourceEvent::Chunk(Bytes::from_static(b"new content\n"))));
        let (written, context, outcome) = run(source, configured()).await;
        assert_eq!(
            String::from_utf8_lossy(&written),
            "one\nkey \nnew content\n"
        );
        assert!(outcome.is_ok());
        let metrics = context.env.metrics.render(Format::OpenMetrics);
        assert!(
            metrics.contains("logredact_errors_total{kind=\"truncated\"} 1"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn a_break_after_a_whole_line_adds_nothing() {
        for reason in [BreakReason::NextFile, BreakReason::RotatedAway] {
            let mut source = Chunks::new(&[b"a whole line\n"], Ok(SourceEvent::Break(reason)));
            source
                .0
                .push_back(Ok(SourceEvent::Chunk(Bytes::from_static(b"next\n"))));
            let (written, _, _) = run(source, configured()).await;
            assert_eq!(written, b"a whole line\nnext\n", "{reason:?}");
        }
    }

    #[tokio::test]
    async fn a_configured_input_that_cannot_be_read_fails_the_run() {
        let failure = Err(io::Error::other("the disk went away"));
        let (written, _, outcome) = run(Chunks::new(&[b"a line\n"], failure), configured()).await;
        assert_eq!(written, b"a line\n");
        assert_eq!(
            outcome.unwrap_err().to_string(),
            "reading file:app.log: the disk went away"
        );
    }

    #[tokio::test]
    async fn a_connection_that_breaks_ends_its_stream_only() {
        let reset = Err(io::Error::from(io::ErrorKind::ConnectionReset));
        let (written, context, outcome) = run(
            Chunks::new(&[b"partial ", b"line"], reset),
            InputRole::Connection,
        )
        .await;
        assert_eq!(written, b"partial line");
        assert!(outcome.is_ok());
        assert!(!context.shutdown.aborted.is_cancelled());
    }
}
