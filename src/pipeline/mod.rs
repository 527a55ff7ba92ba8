//! The pipeline: sources → scanners → outputs, one way, with bounded channels
//! everywhere, so that a slow output slows the reading of input and nothing is
//! dropped. Each stream (stdin, a file, a followed file, a TCP connection) has
//! its own scanner and context window.
//!
//! A run is built first, then run: the [`Plan`](plan::Plan) decides once how
//! streams reach the output; the shared output and the checkpoints are
//! opened; each input opens itself ([`crate::source::open`]) and its streams
//! start; then the run waits for every stream and the output to finish, or
//! for the shutdown's flush allowance to run out.
//!
//! - `plan`: direct, merged or proxied output, from the specs;
//! - `stream`: one stream, source → scanner → port;
//! - `listener`: a TCP input's accept loop;
//! - `pattern`: a `follow:` pattern's watch, a stream per file;
//! - `context`: what every task of a run shares;
//! - `error`: how the pipeline fails.

mod context;
mod error;
mod listener;
mod pattern;
mod plan;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{InputSpec, Limits, OutputSpec};
use crate::shutdown::Shutdown;
use crate::sink::output::{self, Output};
use crate::sink::{Endpoint, Port, SharedOutput};
use crate::source::checkpoint::Checkpoints;
use crate::source::{self, Input, OpenContext, OpenedStream};
use crate::tls::Tls;

pub(crate) use context::Context;
pub use context::{PublishedRules, StreamEnv};
pub use error::PipelineError;
use listener::{Listener, Upstream};
use pattern::PatternFollower;
use plan::{Plan, Route};
use stream::{InputRole, OutputRole, Stream};

/// Where streams come from and go, and the limits they run under.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The inputs.
    pub inputs: Vec<InputSpec>,
    /// The output.
    pub output: OutputSpec,
    /// Limits on connections and on files found by patterns.
    pub limits: Limits,
    /// The TLS of `tls://` inputs and the `tls://` output, loaded.
    pub tls: Tls,
    /// Where checkpoints of followed files are kept.
    pub state_dir: Option<PathBuf>,
    /// The audit file, if the audit stream goes to one: `follow:` patterns
    /// never match it (nor the output file, nor the state directory).
    pub audit_file: Option<PathBuf>,
    /// The forward protocol's handshake settings.
    pub forward: crate::config::forward::ForwardSecurity,
}

/// Runs the pipeline until every input has ended, or the shutdown is over.
pub async fn run(
    topology: &Topology,
    env: StreamEnv,
    shutdown: Shutdown,
) -> Result<(), PipelineError> {
    let plan = Plan::new(&topology.inputs, &topology.output);
    let start_failed = |source| PipelineError::Start {
        what: format!("opening output {}", topology.output),
        source,
    };
    let output = if plan.opens_shared_output() {
        let opened = output::open(
            &topology.output,
            &topology.tls,
            plan != Plan::Direct,
            &env.metrics,
            &shutdown.deadline,
        );
        Some(opened.map_err(start_failed)?)
    } else {
        None
    };
    // Where each connection of a proxy connects, if the output is upstream.
    let upstream = output::endpoint(&topology.output, &topology.tls).map_err(start_failed)?;
    let shared = output
        .as_ref()
        .and_then(Output::sender)
        .map(SharedOutput::new);
    let checkpoints = Checkpoints::open(topology.state_dir.as_deref())?;
    let own_files = {
        let output_file = match &topology.output {
            OutputSpec::File(path) => Some(path.as_path()),
            _ => None,
        };
        let files: Vec<&Path> = output_file
            .into_iter()
            .chain(topology.audit_file.as_deref())
            .collect();
        source::OwnFiles::new(topology.state_dir.as_deref(), &files)
    };
    let context = Context::new(
        env,
        shutdown,
        output::name(&topology.output),
        topology.limits.line_hold,
    );
    let output_done = output.map(|output| watch_output(output, Arc::clone(&context)));
    let tracker = TaskTracker::new();
    let start = Start {
        forward: &topology.forward,
        output_name: topology.output.to_string(),
        forward_tls: match topology.output {
            OutputSpec::ForwardTls(_) => topology.tls.client.clone(),
            _ => None,
        },
        shared: shared.as_ref(),
        upstream: upstream.as_ref(),
        context: &context,
        tracker: &tracker,
        limits: topology.limits,
        checkpoints: &checkpoints,
    };
    let mut patterns = Vec::new();
    for input in &topology.inputs {
        let open = OpenContext {
            limits: topology.limits,
            metrics: &context.env.metrics,
            checkpoints: &checkpoints,
            own_files: &own_files,
            tls: &topology.tls,
        };
        match source::open(input, open).await? {
            // Watched once every input is open: a file also named by a
            // `follow:PATH` input is that input's.
            Input::Pattern(pattern) => patterns.push(pattern),
            opened => start.input(opened, plan.route(input)),
        }
    }
    for pattern in patterns {
        start.pattern(pattern);
    }
    context.env.metrics.inputs_opened();
    drop(shared);
    tracker.close();
    let finished = CancellationToken::new();
    let saver = checkpoints.spawn_saver(Arc::clone(&context.env.metrics), finished.clone());
    wait_for_streams_and_output(&context, &tracker, output_done).await;
    finished.cancel();
    if let Some(saver) = saver {
        if let Ok(Err(failed)) = saver.await {
            context.record(PipelineError::Checkpoint {
                dir: failed.dir.display().to_string(),
            });
        }
    }
    context.outcome()
}

/// Watches the shared output from the start: if it fails, everything stops
/// at once, even while no stream has anything to send (a quiet followed file
/// would otherwise learn of the failure only with its next line). It finishes
/// cleanly once every stream has let go of it.
fn watch_output(output: Output, context: Arc<Context>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(source) = output.close().await {
            context.fail(PipelineError::Write {
                output: context.output_name.clone(),
                source,
            });
        }
    })
}

/// Waits until every stream has ended and the output has written everything
/// handed to it, unless the flush allowance after the deadline runs out.
async fn wait_for_streams_and_output(
    context: &Context,
    tracker: &TaskTracker,
    output_done: Option<JoinHandle<()>>,
) {
    tokio::select! {
        biased;
        () = tracker.wait() => {}
        () = context.give_up.cancelled() => context.fail(PipelineError::Stalled),
    }
    if let Some(output_done) = output_done {
        tokio::select! {
            biased;
            _ = output_done => {}
            () = context.give_up.cancelled() => context.fail(PipelineError::Stalled),
        }
    }
}

/// Starts the streams of opened inputs, each routed as the plan says.
struct Start<'a> {
    /// The forward protocol's handshake settings.
    forward: &'a crate::config::forward::ForwardSecurity,
    /// The output, as messages name it.
    output_name: String,
    /// The client side of TLS, for a `forward+tls://` output.
    forward_tls: Option<crate::tls::ClientTls>,
    /// The shared output; present whenever the plan routes an input to it.
    shared: Option<&'a SharedOutput>,
    /// The output's upstream, if it is a `tcp://` or `tls://` output: each
    /// connection of a proxied listener connects there.
    upstream: Option<&'a Endpoint>,
    context: &'a Arc<Context>,
    tracker: &'a TaskTracker,
    limits: Limits,
    checkpoints: &'a Checkpoints,
}

impl Start<'_> {
    fn input(&self, input: Input, route: Route<'_>) {
        match (input, route, self.shared) {
            (Input::Listener(input), Route::PerConnection(_), _) => {
                let Some(upstream) = self.upstream else {
                    unreachable!("the plan proxies connections only to a tcp:// or tls:// output")
                };
                self.listener(input, Upstream::PerConnection(upstream.clone()), true)
            }
            (Input::Listener(input), _, Some(shared)) => {
                self.listener(input, Upstream::Shared(shared.clone()), false)
            }
            (Input::Stream(opened), Route::Direct, Some(shared)) => {
                self.stream(opened, Port::Direct(shared.sender()))
            }
            (Input::Stream(opened), _, Some(shared)) => self.stream(opened, Port::merged(shared)),
            (Input::Pattern(pattern), _, Some(_)) => self.pattern(pattern),
            (Input::Forward(input), Route::Forward(downstream), _) => {
                let next = crate::forward::NextHop::Forward {
                    address: downstream.to_string(),
                    tls: self.forward_tls.clone(),
                };
                self.forward(input, next)
            }
            (Input::Forward(input), _, Some(shared)) => {
                let next = crate::forward::NextHop::Lines {
                    shared: shared.clone(),
                    name: self.output_name.clone(),
                };
                self.forward(input, next)
            }
            (_, _, None) => {
                unreachable!("the plan opens the shared output whenever it routes an input there")
            }
        }
    }

    fn stream(&self, opened: OpenedStream, port: Port) {
        let stream = Stream {
            id: opened.id,
            source: opened.source,
            input: InputRole::Configured(opened.name),
            port,
            output: OutputRole::Shared,
            scanner: self.context.scanner(opened.resume),
            progress: opened.progress,
        };
        self.tracker.spawn(stream.run(Arc::clone(self.context)));
    }

    fn pattern(&self, pattern: source::FilePattern) {
        let Some(shared) = self.shared else {
            unreachable!("the plan opens the shared output whenever it routes an input there")
        };
        let follower = PatternFollower {
            pattern,
            shared: shared.clone(),
            checkpoints: self.checkpoints.clone(),
            max_files: self.limits.max_files,
            tracker: self.tracker.clone(),
            context: Arc::clone(self.context),
        };
        self.tracker.spawn(follower.run());
    }

    fn forward(&self, input: source::TcpInput, next: crate::forward::NextHop) {
        let listener = crate::forward::ForwardListener {
            input,
            security: self.forward.clone(),
            next,
            limits: crate::forward::ForwardLimits::new(&self.limits, self.forward),
            tracker: self.tracker.clone(),
            context: Arc::clone(self.context),
        };
        self.tracker.spawn(listener.run());
    }

    fn listener(&self, input: source::TcpInput, upstream: Upstream, proxy: bool) {
        tracing::info!(input = %input.name(), proxy, "listening");
        let listener = Listener {
            input,
            upstream,
            idle: self.limits.idle_timeout,
            tracker: self.tracker.clone(),
            context: Arc::clone(self.context),
        };
        self.tracker.spawn(listener.run());
    }
}
