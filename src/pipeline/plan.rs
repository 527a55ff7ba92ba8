//! The shape of a run, decided once from the inputs and the output: which
//! streams share the output, how they share it, and which connections get an
//! upstream of their own. Everything downstream asks the plan instead of
//! re-deriving it from the specs.

use crate::config::{InputSpec, OutputSpec};

/// How the streams of a run reach the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// A single input that is one stream (not a listener, not a pattern):
    /// it has the output to itself and writes batches as they are scanned.
    Direct,
    /// Several streams (or the connections of a listener) share the output,
    /// a whole line at a time, so that lines never interleave.
    Merged,
    /// Forward inputs with a forward output: every inbound connection gets
    /// its own connection to `downstream`, and nothing shares an output.
    Forward {
        /// The next hop's address (`HOST:PORT`).
        downstream: String,
    },
    /// A TCP input with a TCP output (plaintext or TLS, either of them):
    /// every inbound connection gets its own upstream connection to
    /// `upstream`. Inputs that are not listeners, if
    /// any (`shared_by_others`), share the output merged.
    Proxy {
        /// The upstream address (`HOST:PORT`).
        upstream: String,
        /// Whether some input that is not a listener shares the output.
        shared_by_others: bool,
    },
}

/// Where the streams of one input go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// The shared output, as the only stream on it.
    Direct,
    /// The shared output, a whole line at a time.
    Merged,
    /// A new upstream connection (to this `HOST:PORT`) per inbound connection.
    PerConnection(&'a str),
    /// A new forward connection (to this `HOST:PORT`) per inbound connection.
    Forward(&'a str),
}

impl Plan {
    /// The plan for `inputs` written to `output`.
    pub(crate) fn new(inputs: &[InputSpec], output: &OutputSpec) -> Plan {
        // A listener's connections are streams of their own; a line
        // listener's may each have an upstream of their own.
        let is_line_listener = |input: &InputSpec| input.listen_address().is_some();
        let is_listener =
            |input: &InputSpec| is_line_listener(input) || input.forward_address().is_some();
        let is_pattern = |input: &InputSpec| matches!(input, InputSpec::FollowGlob(..));
        if let Some((downstream, _)) = output.forward_address() {
            // Only forward inputs go with it (`forward::check_topology`).
            return Plan::Forward {
                downstream: downstream.to_string(),
            };
        }
        match output.upstream_address() {
            Some(upstream) if inputs.iter().any(is_line_listener) => Plan::Proxy {
                upstream: upstream.to_string(),
                shared_by_others: !inputs.iter().all(is_line_listener),
            },
            _ if inputs.len() == 1 && !is_listener(&inputs[0]) && !is_pattern(&inputs[0]) => {
                Plan::Direct
            }
            _ => Plan::Merged,
        }
    }

    /// Whether the output is opened once and shared by streams (it is not
    /// when every stream is proxied to an upstream of its own).
    pub(crate) fn opens_shared_output(&self) -> bool {
        match self {
            Plan::Direct | Plan::Merged => true,
            Plan::Forward { .. } => false,
            Plan::Proxy {
                shared_by_others, ..
            } => *shared_by_others,
        }
    }

    /// Where the streams of `input` go.
    pub(crate) fn route(&self, input: &InputSpec) -> Route<'_> {
        match (self, input) {
            (Plan::Forward { downstream }, _) => Route::Forward(downstream),
            (Plan::Direct, _) => Route::Direct,
            (Plan::Proxy { upstream, .. }, InputSpec::Tcp(_) | InputSpec::Tls(_)) => {
                Route::PerConnection(upstream)
            }
            _ => Route::Merged,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::RotatedNames;

    fn input(name: &str) -> InputSpec {
        match name {
            "stdin" => InputSpec::Stdin,
            "file" => InputSpec::File(PathBuf::from("a.log")),
            "follow" => InputSpec::Follow(PathBuf::from("b.log"), RotatedNames::Builtin),
            "glob" => InputSpec::FollowGlob("pods/*/*.log".into(), RotatedNames::Builtin),
            "tcp" => InputSpec::Tcp("127.0.0.1:5170".into()),
            "tls" => InputSpec::Tls("127.0.0.1:6514".into()),
            "forward" => InputSpec::Forward("127.0.0.1:24224".into()),
            other => panic!("no input kind {other}"),
        }
    }

    fn output(name: &str) -> OutputSpec {
        match name {
            "stdout" => OutputSpec::Stdout,
            "file" => OutputSpec::File(PathBuf::from("out.log")),
            "tcp" => OutputSpec::Tcp("collector:5170".into()),
            "tls" => OutputSpec::Tls("collector:5170".into()),
            "forward" => OutputSpec::Forward("collector:24224".into()),
            other => panic!("no output kind {other}"),
        }
    }

    /// Every combination of input kinds (one, two of a kind, mixed) with every
    /// output kind: the plan, whether the output is shared, and each input's
    /// route, written out as one line per case.
    #[test]
    fn every_combination_of_inputs_and_output() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["stdin"], "stdout", "direct shared [direct]"),
            (&["stdin"], "file", "direct shared [direct]"),
            (&["stdin"], "tcp", "direct shared [direct]"),
            (&["file"], "stdout", "direct shared [direct]"),
            (&["follow"], "tcp", "direct shared [direct]"),
            (&["tcp"], "stdout", "merged shared [merged]"),
            // A pattern's files are streams that share the output.
            (&["glob"], "stdout", "merged shared [merged]"),
            (&["glob"], "tcp", "merged shared [merged]"),
            (
                &["glob", "tcp"],
                "tcp",
                "proxy shared [merged per-connection]",
            ),
            (&["tcp"], "file", "merged shared [merged]"),
            (&["tcp"], "tcp", "proxy own [per-connection]"),
            (
                &["tcp", "tcp"],
                "tcp",
                "proxy own [per-connection per-connection]",
            ),
            (&["tcp", "tcp"], "stdout", "merged shared [merged merged]"),
            (
                &["file", "follow"],
                "stdout",
                "merged shared [merged merged]",
            ),
            (&["stdin", "file"], "tcp", "merged shared [merged merged]"),
            (&["follow", "tcp"], "file", "merged shared [merged merged]"),
            (
                &["follow", "tcp"],
                "tcp",
                "proxy shared [merged per-connection]",
            ),
            (
                &["stdin", "tcp", "follow"],
                "tcp",
                "proxy shared [merged per-connection merged]",
            ),
            // TLS ends are planned as their plaintext kinds.
            (&["tls"], "stdout", "merged shared [merged]"),
            (&["tls"], "tls", "proxy own [per-connection]"),
            (&["tcp"], "tls", "proxy own [per-connection]"),
            (&["tls"], "tcp", "proxy own [per-connection]"),
            (&["stdin"], "tls", "direct shared [direct]"),
            (
                &["tls", "tcp", "follow"],
                "tls",
                "proxy shared [per-connection per-connection merged]",
            ),
            (&["forward"], "forward", "forward own [forward]"),
            (
                &["forward", "forward"],
                "forward",
                "forward own [forward forward]",
            ),
            // Records as lines on any other output, shared.
            (&["forward"], "stdout", "merged shared [merged]"),
            (&["forward"], "file", "merged shared [merged]"),
            (&["forward"], "tcp", "merged shared [merged]"),
            (
                &["forward", "follow"],
                "tls",
                "merged shared [merged merged]",
            ),
            (
                &["forward", "tcp"],
                "tcp",
                "proxy shared [merged per-connection]",
            ),
        ];
        for (inputs, out, expected) in cases {
            let inputs: Vec<InputSpec> = inputs.iter().map(|name| input(name)).collect();
            let plan = Plan::new(&inputs, &output(out));
            let kind = match plan {
                Plan::Direct => "direct",
                Plan::Merged => "merged",
                Plan::Proxy { .. } => "proxy",
                Plan::Forward { .. } => "forward",
            };
            let shared = if plan.opens_shared_output() {
                "shared"
            } else {
                "own"
            };
            let routes: Vec<&str> = inputs
                .iter()
                .map(|i| match plan.route(i) {
                    Route::Direct => "direct",
                    Route::Merged => "merged",
                    Route::PerConnection(upstream) => {
                        assert_eq!(upstream, "collector:5170");
                        "per-connection"
                    }
                    Route::Forward(_) => "forward",
                })
                .collect();
            let got = format!("{kind} {shared} [{}]", routes.join(" "));
            assert_eq!(&got, expected, "inputs {inputs:?} output {out}");
        }
    }

    #[test]
    fn a_proxy_connects_to_the_configured_upstream() {
        let plan = Plan::new(&[input("tcp")], &output("tcp"));
        assert_eq!(
            plan,
            Plan::Proxy {
                upstream: "collector:5170".into(),
                shared_by_others: false
            }
        );
    }
}
