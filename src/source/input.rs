//! Opening an input from its spec: each kind builds itself here, so that the
//! pipeline only decides where its streams go. An input is one stream
//! (stdin, a file read to its end, a followed file), a pattern whose files are
//! streams, or a listener whose connections are streams.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::config::{InputSpec, Limits};
use crate::metrics::Metrics;
use crate::progress::StreamProgress;
use crate::scan::scanner::Mark;
use crate::scrub::file_stream_id;
use crate::source::checkpoint::{Checkpoints, GroupId};
use crate::source::{
    ChunkSource, FilePattern, FollowOptions, FollowSource, OwnFiles, ReaderSource, SourceEvent,
    TcpInput,
};
use crate::tls::Tls;

/// An input could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct OpenError {
    /// What was being opened, as the message says it.
    pub what: String,
    /// Why it failed.
    pub source: io::Error,
}

/// An opened input.
pub(crate) enum Input {
    /// One stream.
    Stream(OpenedStream),
    /// A listener: each connection is a stream.
    Listener(TcpInput),
    /// A `follow:` pattern: each file it matches is a stream.
    Pattern(FilePattern),
    /// A forward listener: each connection's records go to a forward output.
    Forward(TcpInput),
}

/// The source of a stream that is not a connection.
pub(crate) enum StreamSource {
    /// Standard input or a file, read to its end.
    Reader(ReaderSource),
    /// A followed file.
    Follow(FollowSource),
}

impl ChunkSource for StreamSource {
    async fn next(&mut self) -> io::Result<SourceEvent> {
        match self {
            StreamSource::Reader(source) => source.next().await,
            StreamSource::Follow(source) => source.next().await,
        }
    }

    fn request_stop(&mut self) {
        match self {
            StreamSource::Reader(source) => source.request_stop(),
            StreamSource::Follow(source) => source.request_stop(),
        }
    }
}

/// One stream of an input, ready to run.
pub(crate) struct OpenedStream {
    /// The stream id (`stdin`, `file:<path>`, masked).
    pub(crate) id: String,
    /// The input as configured, for messages.
    pub(crate) name: String,
    /// Where its bytes come from.
    pub(crate) source: StreamSource,
    /// Where its scanner resumes (a followed file's checkpoint).
    pub(crate) resume: Option<Mark>,
    /// Where delivered positions are reported, for a followed file.
    pub(crate) progress: Option<Arc<StreamProgress>>,
}

/// What opening inputs needs from the run.
pub(crate) struct OpenContext<'a> {
    /// Connection limits of listeners.
    pub(crate) limits: Limits,
    /// Process counters.
    pub(crate) metrics: &'a Arc<Metrics>,
    /// Where followed files resume and save their checkpoints.
    pub(crate) checkpoints: &'a Checkpoints,
    /// Files logredact writes, which patterns never match.
    pub(crate) own_files: &'a OwnFiles,
    /// The server side of `tls://` inputs.
    pub(crate) tls: &'a Tls,
}

/// Opens the input `spec`.
pub(crate) async fn open(spec: &InputSpec, context: OpenContext<'_>) -> Result<Input, OpenError> {
    let failed = |what: String| move |source| OpenError { what, source };
    let reader = |id: String, name: String, source| {
        Input::Stream(OpenedStream {
            id,
            name,
            source: StreamSource::Reader(source),
            resume: None,
            progress: None,
        })
    };
    match spec {
        InputSpec::Stdin => {
            let source = ReaderSource::stdin().map_err(failed("reading stdin".into()))?;
            Ok(reader("stdin".into(), "stdin".into(), source))
        }
        InputSpec::File(path) => {
            let source =
                ReaderSource::file(path).map_err(failed(format!("opening input {spec}")))?;
            Ok(reader(file_stream_id(path), spec.to_string(), source))
        }
        InputSpec::Follow(path, rotated) => {
            if context.own_files.contains(path) {
                return Err(OpenError {
                    what: format!("following {spec}"),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "that is logredact's own output, audit or state file: it would read back what it writes",
                    ),
                });
            }
            let options = FollowOptions {
                rotated: rotated.clone(),
                own_files: context.own_files.clone(),
                ..FollowOptions::default()
            };
            follow_file(
                path,
                spec.to_string(),
                (context.checkpoints, None),
                context.metrics,
                options,
            )
            .map(Input::Stream)
            .map_err(failed(format!("following {spec}")))
        }
        InputSpec::FollowGlob(pattern, rotated) => Ok(Input::Pattern(FilePattern::new(
            pattern,
            rotated.clone(),
            context.own_files.clone(),
        ))),
        InputSpec::Tcp(address) | InputSpec::Tls(address) => {
            let tls = match spec {
                // Checked when the settings were resolved; never plaintext.
                InputSpec::Tls(_) => Some(context.tls.server.clone().ok_or_else(|| OpenError {
                    what: format!("listening on {spec}"),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "no TLS server settings"),
                })?),
                _ => None,
            };
            TcpInput::bind(address, tls, context.limits, Arc::clone(context.metrics))
                .await
                .map(Input::Listener)
                .map_err(failed(format!("listening on {spec}")))
        }
        InputSpec::Forward(address) | InputSpec::ForwardTls(address) => {
            let tls = match spec {
                // Checked when the settings were resolved; never plaintext.
                InputSpec::ForwardTls(_) => {
                    Some(context.tls.server.clone().ok_or_else(|| OpenError {
                        what: format!("listening on {spec}"),
                        source: io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "no TLS server settings",
                        ),
                    })?)
                }
                _ => None,
            };
            TcpInput::bind(address, tls, context.limits, Arc::clone(context.metrics))
                .await
                .map(Input::Forward)
                .map_err(failed(format!("listening on {spec}")))
        }
    }
}

/// The followed file `path` (of the input `name`; found by the pattern of
/// `group`, if given), resumed from its checkpoint.
pub(crate) fn follow_file(
    path: &Path,
    name: String,
    (checkpoints, group): (&Checkpoints, Option<GroupId>),
    metrics: &Metrics,
    options: FollowOptions,
) -> io::Result<OpenedStream> {
    let resume = checkpoints.resume(path, group, metrics);
    let mark = resume.checkpoint.as_ref().map(|c| c.mark());
    let start = mark.map_or(0, |m| m.offset);
    let id = file_stream_id(path);
    let key = checkpoints.identity_key();
    let progress = Arc::clone(&resume.progress);
    let source = FollowSource::start(
        path.to_path_buf(),
        resume.checkpoint,
        key,
        progress,
        start,
        options,
    )?;
    Ok(OpenedStream {
        id,
        name,
        source: StreamSource::Follow(source),
        resume: mark,
        progress: Some(resume.progress),
    })
}
