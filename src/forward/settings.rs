//! What a forward input runs under: the limits on one message, and which
//! inputs and outputs the protocol can be combined with.

use std::time::Duration;

use crate::config::forward::ForwardSecurity;
use crate::config::{InputSpec, Limits, OutputSpec};

/// Limits on a forward connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForwardLimits {
    /// The longest message, in bytes.
    pub(crate) max_message: usize,
    /// The most bytes gzipped entries may inflate to.
    pub(crate) max_decompressed: usize,
    /// Connections idle this long are closed.
    pub(crate) idle: Option<Duration>,
}

impl ForwardLimits {
    /// The limits of a run with `limits` and the `forward:` section.
    pub(crate) fn new(limits: &Limits, forward: &ForwardSecurity) -> ForwardLimits {
        ForwardLimits {
            max_message: forward.max_message,
            max_decompressed: forward.max_decompressed,
            idle: limits.idle_timeout,
        }
    }
}

/// Checks that a forward output takes records only: its inputs must all be
/// forward inputs (lines have no tag and no time). A forward input may go to
/// any output: to another, its records are written as lines.
pub(crate) fn check_topology(inputs: &[InputSpec], output: &OutputSpec) -> Result<(), String> {
    let forward_out = output.forward_address().is_some();
    if forward_out && !inputs.iter().all(|i| i.forward_address().is_some()) {
        return Err(
            "a forward:// output takes records from forward:// inputs only: every input must be forward://HOST:PORT or forward+tls://HOST:PORT"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_output_takes_forward_inputs_only() {
        let forward_in: InputSpec = "forward://127.0.0.1:24224".parse().unwrap();
        let forward_out: OutputSpec = "forward://collector:24224".parse().unwrap();
        assert!(check_topology(std::slice::from_ref(&forward_in), &forward_out).is_ok());
        assert!(check_topology(std::slice::from_ref(&forward_in), &OutputSpec::Stdout).is_ok());
        let error = check_topology(&[forward_in, InputSpec::Stdin], &forward_out).unwrap_err();
        assert_eq!(
            error,
            "a forward:// output takes records from forward:// inputs only: every input must be forward://HOST:PORT or forward+tls://HOST:PORT"
        );
        assert!(check_topology(&[InputSpec::Stdin], &forward_out).is_err());
        assert!(check_topology(&[InputSpec::Stdin], &OutputSpec::Stdout).is_ok());
    }
}
