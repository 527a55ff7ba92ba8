//! The pipeline: sources → scanners → outputs, one way, with bounded channels
//! everywhere, so that a slow output slows the reading of input and nothing is
//! dropped. Each stream (stdin, a file, a followed file, a TCP connection) has
//! its own scanner and context window.
//!
//! Topology: with a TCP input and a TCP output, every inbound connection gets
//! its own upstream connection (a redacting proxy). Otherwise streams share
//! one output: directly if there is a single non-TCP input, else merged a
//! whole line at a time so that lines of different streams never interleave.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::audit::{ArrivalClock, AuditHandle, AuditRecord, rfc3339_millis};
use crate::config::{InputSpec, Limits, OutputSpec};
use crate::metrics::{ErrorKind, Metrics};
use crate::progress::{Ack, StreamProgress};
use crate::scan::detection::Detection;
use crate::scan::rule::RuleSet;
use crate::scan::scanner::{DetectionMode, Scanner};
use crate::scrub::file_stream_id;
use crate::shutdown::Shutdown;
use crate::sink::{Batch, BatchBuilder, Port, SharedOutput, TcpSink, WriterSink};
use crate::source::checkpoint::{Checkpoint, CheckpointStore};
use crate::source::identity::IdentityKey;
use crate::source::{
    Accepted, ChunkSource, CutReason, FollowSource, ReaderSource, SourceEvent, TcpInput, TcpSource,
};

/// How often checkpoints of followed files are saved.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// After the grace period, how long streams and outputs get, in all, to hand
/// over and write what is decided before the pipeline gives up on an output
/// that does not move.
const FLUSH_AFTER_DEADLINE: Duration = Duration::from_secs(2);

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

/// Where streams come from and go, and the limits they run under.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The inputs.
    pub inputs: Vec<InputSpec>,
    /// The output.
    pub output: OutputSpec,
    /// Connection limits of TCP inputs.
    pub limits: Limits,
    /// Where checkpoints of followed files are kept.
    pub state_dir: Option<PathBuf>,
}

/// What every stream shares.
#[derive(Clone)]
pub struct StreamEnv {
    /// The compiled rules.
    pub rules: Arc<RuleSet>,
    /// The audit stream, if enabled.
    pub audit: Option<AuditHandle>,
    /// Process counters.
    pub metrics: Arc<Metrics>,
    /// Whether detections are classified (someone reads them: the audit
    /// stream or the metrics endpoint).
    pub mode: DetectionMode,
}

/// An output shared by streams.
enum Output {
    Writer(WriterSink),
    Tcp(TcpSink),
}

impl Output {
    fn open(
        spec: &OutputSpec,
        env: &StreamEnv,
        shutdown: &Shutdown,
    ) -> Result<Output, PipelineError> {
        let start = |source| PipelineError::Start {
            what: format!("opening output {spec}"),
            source,
        };
        Ok(match spec {
            OutputSpec::Stdout => Output::Writer(WriterSink::stdout().map_err(start)?),
            OutputSpec::File(path) => Output::Writer(WriterSink::file(path).map_err(start)?),
            OutputSpec::Tcp(address) => Output::Tcp(TcpSink::connect(
                address.clone(),
                Arc::clone(&env.metrics),
                shutdown.deadline.clone(),
            )),
        })
    }

    fn sender(&self) -> Option<mpsc::Sender<Batch>> {
        match self {
            Output::Writer(sink) => sink.sender(),
            Output::Tcp(sink) => sink.sender(),
        }
    }

    async fn close(self) -> io::Result<()> {
        match self {
            Output::Writer(sink) => sink.close().await,
            Output::Tcp(sink) => sink.close().await,
        }
    }
}

/// The output's name in messages.
fn output_name(spec: &OutputSpec) -> String {
    match spec {
        OutputSpec::Stdout => "stdout".into(),
        other => other.to_string(),
    }
}

/// Whose output a stream writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OutputRole {
    /// The output shared by the pipeline: if it fails, nothing more can be
    /// delivered and everything stops.
    Shared,
    /// The stream's own upstream connection: if it fails, only this stream ends.
    Own,
}

/// What a stream's read failure means for the run.
enum InputRole {
    /// A configured input, named as given: if it cannot be read, the run has
    /// failed (exit 1), though the other streams go on to their end.
    Configured(String),
    /// A connection to a TCP input: a peer that resets or breaks its
    /// connection ends that stream only.
    Connection,
}

/// A stream's read or write failure, for the task that started it.
enum StreamFailure {
    Read(io::Error),
    Write(io::Error),
}

/// Runs the pipeline until every input has ended, or the shutdown is over.
pub async fn run(
    topology: &Topology,
    env: StreamEnv,
    shutdown: Shutdown,
) -> Result<(), PipelineError> {
    let proxy = matches!(topology.output, OutputSpec::Tcp(_))
        && topology
            .inputs
            .iter()
            .any(|i| matches!(i, InputSpec::Tcp(_)));
    let shares_output = topology
        .inputs
        .iter()
        .any(|i| !(proxy && matches!(i, InputSpec::Tcp(_))));
    let output = if shares_output {
        Some(Output::open(&topology.output, &env, &shutdown)?)
    } else {
        None
    };
    let shared = output
        .as_ref()
        .and_then(Output::sender)
        .map(SharedOutput::new);
    let direct = topology.inputs.len() == 1 && !matches!(topology.inputs[0], InputSpec::Tcp(_));
    let store = match &topology.state_dir {
        Some(dir) => Some(
            CheckpointStore::open(dir).map_err(|source| PipelineError::Start {
                what: format!("opening the state directory {}", dir.display()),
                source,
            })?,
        ),
        None => None,
    };

    let runner = Arc::new(Runner {
        env,
        shutdown: shutdown.clone(),
        give_up: give_up_after_flush(&shutdown),
        output_name: output_name(&topology.output),
        failure: Mutex::new(None),
    });
    // The output is watched from the start: if it fails, everything stops at
    // once, even while no stream has anything to send (a quiet followed file
    // would otherwise learn of the failure only with its next line). It
    // finishes cleanly once every stream has let go of it.
    let output_done = output.map(|output| {
        let runner = Arc::clone(&runner);
        tokio::spawn(async move {
            if let Err(source) = output.close().await {
                runner.fail(PipelineError::Write {
                    output: runner.output_name.clone(),
                    source,
                });
            }
        })
    });
    let tracker = TaskTracker::new();
    let mut followed = Vec::new();
    for input in &topology.inputs {
        let port = || match (&shared, direct) {
            (Some(shared), true) => Port::Direct(shared.sender()),
            (Some(shared), false) => Port::merged(shared),
            (None, _) => unreachable!("non-TCP inputs always share the output"),
        };
        match input {
            InputSpec::Stdin => {
                let source = ReaderSource::stdin().map_err(|source| PipelineError::Start {
                    what: "reading stdin".into(),
                    source,
                })?;
                let scanner = runner.scanner(None);
                tracker.spawn(Arc::clone(&runner).stream(
                    "stdin".into(),
                    source,
                    InputRole::Configured("stdin".into()),
                    port(),
                    OutputRole::Shared,
                    scanner,
                    None,
                ));
            }
            InputSpec::File(path) => {
                let source = ReaderSource::file(path).map_err(|source| PipelineError::Start {
                    what: format!("opening input {input}"),
                    source,
                })?;
                let scanner = runner.scanner(None);
                let id = file_stream_id(path);
                tracker.spawn(Arc::clone(&runner).stream(
                    id,
                    source,
                    InputRole::Configured(input.to_string()),
                    port(),
                    OutputRole::Shared,
                    scanner,
                    None,
                ));
            }
            InputSpec::Follow(path) => {
                let resume = match &store {
                    Some(store) => store.load(path).unwrap_or_else(|e| {
                        runner.env.metrics.error(ErrorKind::Checkpoint);
                        tracing::warn!(stream = %file_stream_id(path), error = %e, "ignoring an unreadable checkpoint; reading the file from the start");
                        None
                    }),
                    None => {
                        tracing::warn!(stream = %file_stream_id(path), "no --state-dir: after a restart this file is read again from the start");
                        None
                    }
                };
                let progress = StreamProgress::new();
                let start = resume.as_ref().map_or(0, |c| c.stream_offset);
                if let Some(checkpoint) = &resume {
                    progress.reading(
                        checkpoint.stream_offset,
                        checkpoint.file(),
                        checkpoint.offset,
                    );
                    progress.delivered(checkpoint.mark());
                }
                let scanner = runner.scanner(resume.as_ref().map(Checkpoint::mark));
                let key = store
                    .as_ref()
                    .map_or_else(IdentityKey::in_memory, CheckpointStore::identity_key);
                let source =
                    FollowSource::start(path.clone(), resume, key, Arc::clone(&progress), start)
                        .map_err(|source| PipelineError::Start {
                            what: format!("following {input}"),
                            source,
                        })?;
                let id = file_stream_id(path);
                followed.push((path.clone(), Arc::clone(&progress)));
                tracker.spawn(Arc::clone(&runner).stream(
                    id,
                    source,
                    InputRole::Configured(input.to_string()),
                    port(),
                    OutputRole::Shared,
                    scanner,
                    Some(progress),
                ));
            }
            InputSpec::Tcp(address) => {
                let listener =
                    TcpInput::bind(address, topology.limits, Arc::clone(&runner.env.metrics))
                        .await
                        .map_err(|source| PipelineError::Start {
                            what: format!("listening on {input}"),
                            source,
                        })?;
                tracing::info!(input = %format!("tcp://{}", listener.address()), proxy, "listening");
                let upstream = match (&topology.output, proxy) {
                    (OutputSpec::Tcp(upstream), true) => Upstream::PerConnection(upstream.clone()),
                    _ => Upstream::Shared(
                        shared
                            .clone()
                            .unwrap_or_else(|| unreachable!("shared output exists")),
                    ),
                };
                tracker.spawn(Arc::clone(&runner).accept_loop(
                    listener,
                    upstream,
                    topology.limits.idle_timeout,
                    tracker.clone(),
                ));
            }
        }
    }
    runner.env.metrics.inputs_opened();
    drop(shared);
    tracker.close();

    // Checkpoints are saved while the streams run, and once more at the very
    // end, after the output has confirmed everything it wrote: a checkpoint
    // taken when the streams end would miss what is still queued.
    let finished = CancellationToken::new();
    let checkpointer = store.map(|store| {
        let followed = followed.clone();
        let finished = finished.clone();
        let runner = Arc::clone(&runner);
        tokio::spawn(async move {
            let mut saved = vec![None; followed.len()];
            loop {
                let done = tokio::select! {
                    () = tokio::time::sleep(CHECKPOINT_INTERVAL) => false,
                    () = finished.cancelled() => true,
                };
                let all_saved =
                    save_checkpoints(&store, &followed, &mut saved, &runner.env.metrics).await;
                if done {
                    // A failed save along the way is made good by the next
                    // one; the last one has no next.
                    if !all_saved {
                        runner.record(PipelineError::Checkpoint {
                            dir: store.dir().display().to_string(),
                        });
                    }
                    return;
                }
            }
        })
    });

    tokio::select! {
        biased;
        () = tracker.wait() => {}
        () = runner.give_up.cancelled() => runner.fail(PipelineError::Stalled),
    }
    if let Some(output_done) = output_done {
        tokio::select! {
            biased;
            _ = output_done => {}
            () = runner.give_up.cancelled() => runner.fail(PipelineError::Stalled),
        }
    }
    finished.cancel();
    if let Some(checkpointer) = checkpointer {
        let _ = checkpointer.await;
    }
    let failure = runner
        .failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Cancelled `FLUSH_AFTER_DEADLINE` after the grace period ends (or after a
/// fatal error): the one allowance, shared by the streams and the output, to
/// hand over and write what is decided. Then the pipeline stops waiting.
fn give_up_after_flush(shutdown: &Shutdown) -> CancellationToken {
    let give_up = CancellationToken::new();
    let (deadline, token) = (shutdown.deadline.clone(), give_up.clone());
    tokio::spawn(async move {
        deadline.cancelled().await;
        tokio::time::sleep(FLUSH_AFTER_DEADLINE).await;
        token.cancel();
    });
    give_up
}

/// Saves the checkpoint of every followed file whose delivered position
/// moved; false if one could not be saved.
async fn save_checkpoints(
    store: &CheckpointStore,
    followed: &[(PathBuf, Arc<StreamProgress>)],
    saved: &mut [Option<Checkpoint>],
    metrics: &Metrics,
) -> bool {
    let mut all_saved = true;
    for ((path, progress), saved) in followed.iter().zip(saved.iter_mut()) {
        let Some((mark, position)) = progress.delivered_position() else {
            continue;
        };
        let checkpoint = Checkpoint::new(path, mark, position);
        if saved.as_ref() == Some(&checkpoint) {
            continue;
        }
        let (store, path_owned, to_save) = (store.clone(), path.clone(), checkpoint.clone());
        let result = tokio::task::spawn_blocking(move || store.save(&path_owned, &to_save)).await;
        let error = match result {
            Ok(Ok(())) => {
                *saved = Some(checkpoint);
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => io::Error::other(e),
        };
        all_saved = false;
        metrics.error(ErrorKind::Checkpoint);
        tracing::error!(stream = %file_stream_id(path), error = %error, "cannot save the checkpoint");
    }
    all_saved
}

/// Where the streams of a TCP listener go.
enum Upstream {
    /// One shared output.
    Shared(SharedOutput),
    /// A new upstream connection per inbound connection.
    PerConnection(String),
}

/// Shared by every task of the pipeline.
struct Runner {
    env: StreamEnv,
    shutdown: Shutdown,
    /// Cancelled when the flush allowance after the deadline is over: a
    /// stream still waiting for its output stops waiting.
    give_up: CancellationToken,
    output_name: String,
    /// The first fatal error.
    failure: Mutex<Option<PipelineError>>,
}

impl Runner {
    fn scanner(&self, resume: Option<crate::scan::scanner::Mark>) -> Scanner {
        match resume {
            Some(mark) => Scanner::resume(Arc::clone(&self.env.rules), self.env.mode, mark),
            None => Scanner::new(Arc::clone(&self.env.rules), self.env.mode),
        }
    }

    /// Records a fatal error and stops everything.
    fn fail(&self, error: PipelineError) {
        self.record(error);
        self.shutdown.abort();
    }

    /// Records an error that makes the run a failure while the other streams
    /// go on; the first error recorded is the one reported.
    fn record(&self, error: PipelineError) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if failure.is_none() {
            *failure = Some(error);
        }
    }

    async fn accept_loop(
        self: Arc<Self>,
        mut listener: TcpInput,
        upstream: Upstream,
        idle: Option<Duration>,
        tracker: TaskTracker,
    ) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = self.shutdown.stopping.cancelled() => return,
            };
            let Accepted {
                stream,
                peer,
                mut permit,
            } = accepted;
            let id = format!("tcp:{peer}");
            let source = TcpSource::new(stream, idle);
            let scanner = self.scanner(None);
            let runner = Arc::clone(&self);
            match &upstream {
                Upstream::Shared(shared) => {
                    let port = Port::merged(shared);
                    tracker.spawn(async move {
                        runner
                            .stream(
                                id,
                                source,
                                InputRole::Connection,
                                port,
                                OutputRole::Shared,
                                scanner,
                                None,
                            )
                            .await;
                        drop(permit);
                    });
                }
                Upstream::PerConnection(address) => {
                    let sink = tracing::info_span!("stream", stream = %id).in_scope(|| {
                        TcpSink::connect(
                            address.clone(),
                            Arc::clone(&self.env.metrics),
                            self.shutdown.deadline.clone(),
                        )
                    });
                    let Some(sender) = sink.sender() else {
                        continue;
                    };
                    let output = format!("tcp://{address}");
                    tracker.spawn(async move {
                        Arc::clone(&runner)
                            .stream(
                                id.clone(),
                                source,
                                InputRole::Connection,
                                Port::Direct(sender),
                                OutputRole::Own,
                                scanner,
                                None,
                            )
                            .await;
                        // Until its data is delivered, the connection keeps
                        // its place (and what it holds in memory).
                        permit.connection_closed();
                        let closed = tokio::select! {
                            result = sink.close() => result,
                            () = runner.give_up.cancelled() => Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the upstream did not take the remaining data within the grace period",
                            )),
                        };
                        if let Err(e) = closed {
                            runner.env.metrics.error(ErrorKind::Write);
                            tracing::error!(stream = %id, output = %output, error = %e, "upstream lost; this stream's output is incomplete");
                            // What was not delivered must not pass for
                            // delivered: the run has failed, though the
                            // other connections go on.
                            runner.record(PipelineError::Write { output, source: e });
                        }
                        drop(permit);
                    });
                }
            }
        }
    }

    /// Runs one stream to its end, logging how it ended.
    // Each argument is a separate part of the stream; a struct holding them
    // would only be taken apart again here.
    #[allow(clippy::too_many_arguments)]
    async fn stream<S: ChunkSource>(
        self: Arc<Self>,
        id: String,
        mut source: S,
        input: InputRole,
        mut port: Port,
        role: OutputRole,
        scanner: Scanner,
        progress: Option<Arc<StreamProgress>>,
    ) {
        let span = tracing::info_span!("stream", stream = %id);
        let metrics = Arc::clone(&self.env.metrics);
        metrics.stream_started();
        let result = self
            .redact(&id, &mut source, &mut port, scanner, progress)
            .instrument(span.clone())
            .await;
        metrics.stream_ended();
        let _entered = span.enter();
        match result {
            Ok(()) => {}
            Err(StreamFailure::Read(e)) => {
                metrics.error(ErrorKind::Read);
                tracing::error!(error = %e, "reading the stream failed; the stream is stopped (undecided bytes are not written)");
                if let InputRole::Configured(input) = input {
                    self.record(PipelineError::Read { input, source: e });
                }
            }
            Err(StreamFailure::Write(e)) => {
                metrics.error(ErrorKind::Write);
                tracing::debug!(error = %e, "the output stopped");
                if role == OutputRole::Shared {
                    // Nothing more can be delivered: stop everything; the
                    // output's own error is reported when it is closed.
                    self.shutdown.abort();
                }
            }
        }
    }

    /// Scans `source` into `port` until the stream ends or is cut.
    async fn redact<S: ChunkSource>(
        &self,
        id: &str,
        source: &mut S,
        port: &mut Port,
        mut scanner: Scanner,
        progress: Option<Arc<StreamProgress>>,
    ) -> Result<(), StreamFailure> {
        let mut recorder = DetectionRecorder {
            stream: id,
            audit: self.env.audit.as_ref(),
            metrics: &self.env.metrics,
            clock: ArrivalClock::new(self.env.rules.context_bytes() as u64),
            received: scanner.decided().offset,
        };
        let mut stop_requested = false;
        let mut buffer = BytesMut::new();
        loop {
            let event = tokio::select! {
                biased;
                () = self.shutdown.deadline.cancelled() => SourceEvent::Cut(CutReason::Shutdown),
                () = self.shutdown.stopping.cancelled(), if !stop_requested => {
                    source.request_stop();
                    stop_requested = true;
                    continue;
                }
                event = source.next() => event.map_err(StreamFailure::Read)?,
            };
            match event {
                SourceEvent::Chunk(chunk) => {
                    self.env.metrics.read(chunk.len());
                    recorder.arrived(chunk.len());
                    let mut builder = BatchBuilder::new(&chunk, &mut buffer);
                    match &progress {
                        None => scanner.feed(&chunk, &mut builder),
                        // A merged output takes whole lines only: a mark at
                        // the last newline lets the checkpoint follow the
                        // lines written, not wait for the partial line.
                        Some(progress) => {
                            let lines = memchr::memrchr(b'\n', &chunk).map_or(0, |at| at + 1);
                            for part in [&chunk[..lines], &chunk[lines..]] {
                                if part.is_empty() {
                                    continue;
                                }
                                scanner.feed(part, &mut builder);
                                builder.acknowledge(Ack {
                                    progress: Arc::clone(progress),
                                    mark: scanner.decided(),
                                });
                            }
                        }
                    }
                    let (batch, detections) = builder.finish();
                    self.send(port, batch).await?;
                    recorder.record(detections);
                }
                SourceEvent::Break(reason) => {
                    let mut builder = BatchBuilder::detached(&mut buffer);
                    let dropped = scanner.restart(&mut builder);
                    if let Some(progress) = &progress {
                        builder.acknowledge(Ack {
                            progress: Arc::clone(progress),
                            mark: scanner.decided(),
                        });
                    }
                    let (batch, detections) = builder.finish();
                    self.send(port, batch).await?;
                    recorder.record(detections);
                    reason.report(dropped, &self.env.metrics);
                }
                SourceEvent::End => {
                    let mut builder = BatchBuilder::detached(&mut buffer);
                    let stats = scanner.finish(&mut builder);
                    let (batch, detections) = builder.finish();
                    self.send(port, batch).await?;
                    self.until_give_up(port.finish()).await?;
                    recorder.record(detections);
                    tracing::debug!(
                        bytes_in = stats.bytes_in,
                        masked = stats.masked,
                        "stream ended"
                    );
                    return Ok(());
                }
                SourceEvent::Cut(reason) => {
                    let mut builder = BatchBuilder::detached(&mut buffer);
                    let (stats, dropped) = scanner.cut(&mut builder);
                    let (batch, detections) = builder.finish();
                    self.send(port, batch).await?;
                    self.until_give_up(port.finish()).await?;
                    recorder.record(detections);
                    match reason {
                        CutReason::Idle => tracing::info!(
                            undecided_bytes_not_written = dropped,
                            "connection idle too long; closed"
                        ),
                        CutReason::Shutdown
                            if dropped > 0 && !self.shutdown.aborted.is_cancelled() =>
                        {
                            tracing::info!(
                                undecided_bytes_not_written = dropped,
                                "stream stopped at shutdown; the bytes of a possible secret still undecided were not written"
                            )
                        }
                        CutReason::Shutdown => tracing::debug!("stream stopped at shutdown"),
                    }
                    tracing::debug!(
                        bytes_in = stats.bytes_in,
                        masked = stats.masked,
                        "stream ended"
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Waits for the output to take something, unless the flush allowance
    /// after the deadline runs out first.
    async fn until_give_up(
        &self,
        handover: impl Future<Output = io::Result<()>>,
    ) -> Result<(), StreamFailure> {
        tokio::select! {
            result = handover => result.map_err(StreamFailure::Write),
            () = self.give_up.cancelled() => Err(StreamFailure::Write(io::Error::new(
                io::ErrorKind::TimedOut,
                "the output did not take the data within the grace period",
            ))),
        }
    }

    async fn send(&self, port: &mut Port, batch: Batch) -> Result<(), StreamFailure> {
        let len = batch.len();
        self.until_give_up(port.send(batch)).await?;
        self.env.metrics.written(len);
        Ok(())
    }
}

/// Sends a stream's detections to the metrics and the audit writer, stamped
/// with the time their bytes arrived.
struct DetectionRecorder<'a> {
    stream: &'a str,
    audit: Option<&'a AuditHandle>,
    metrics: &'a Metrics,
    clock: ArrivalClock,
    received: u64,
}

impl DetectionRecorder<'_> {
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
