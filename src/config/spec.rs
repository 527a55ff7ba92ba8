//! Input and output specifications, as written on the command line and in the
//! configuration file (SPEC §9).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// `-`: standard input.
    Stdin,
    /// `file:PATH`: read to the end.
    File(PathBuf),
    /// `follow:PATH`: like `tail -F`, with a checkpoint; its rotated
    /// generations are named as the second field says.
    Follow(PathBuf, RotatedNames),
    /// `follow:PATTERN` (`*`, `?`, `[…]`, `**`): every file the pattern
    /// matches, now or later, followed as its own stream.
    FollowGlob(String, RotatedNames),
    /// `tcp://HOST:PORT`: listen; each connection is a stream.
    Tcp(String),
    /// `tls://HOST:PORT`: listen for TLS connections (with the settings of
    /// `tls.server`); each connection is a stream, as for `tcp://`.
    Tls(String),
    /// `forward://HOST:PORT`: listen for Fluent forward peers.
    Forward(String),
    /// `forward+tls://HOST:PORT`: the same over TLS (with the settings of
    /// `tls.server`).
    ForwardTls(String),
}

/// How the rotated generations of a followed file are named, in its
/// directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RotatedNames {
    /// `NAME.N`, `NAME-DATE`, `NAME.DATE` (see `source::rotation`).
    #[default]
    Builtin,
    /// A name with one `*` (what varies from one generation to the next)
    /// and `{name}` for the followed file's name: `{name}.*`, `app-*.log`.
    Pattern {
        /// The text before the `*`.
        before: String,
        /// The text after it.
        after: String,
    },
}

impl RotatedNames {
    /// Parses a `rotated:` name pattern.
    pub fn pattern(text: &str) -> Result<RotatedNames, SpecError> {
        let bad = |why: &str| SpecError(format!("rotated: '{text}': {why}"));
        if text.contains('/') {
            return Err(bad("a name in the followed file's directory, without '/'"));
        }
        if text.contains(['?', '[', ']']) {
            return Err(bad("only '*' is a wildcard here"));
        }
        let Some((before, after)) = text.split_once('*') else {
            return Err(bad(
                "one '*' is needed, for what varies between generations",
            ));
        };
        if after.contains('*') {
            return Err(bad("only one '*' is allowed"));
        }
        Ok(RotatedNames::Pattern {
            before: before.to_string(),
            after: after.to_string(),
        })
    }
}

/// Where the redacted output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// `-`: standard output.
    Stdout,
    /// `file:PATH`: append.
    File(PathBuf),
    /// `tcp://HOST:PORT`: connect.
    Tcp(String),
    /// `tls://HOST:PORT`: connect with TLS (with the settings of
    /// `tls.client`); otherwise as `tcp://`.
    Tls(String),
    /// `forward://HOST:PORT`: connect to a Fluent forward peer.
    Forward(String),
    /// `forward+tls://HOST:PORT`: the same over TLS (with the settings of
    /// `tls.client`).
    ForwardTls(String),
}

impl InputSpec {
    /// The address of a `forward://` or `forward+tls://` input, and whether
    /// it is the latter.
    pub fn forward_address(&self) -> Option<(&str, bool)> {
        match self {
            InputSpec::Forward(address) => Some((address, false)),
            InputSpec::ForwardTls(address) => Some((address, true)),
            _ => None,
        }
    }

    /// The address a `tcp://` or `tls://` input listens on.
    pub fn listen_address(&self) -> Option<&str> {
        match self {
            InputSpec::Tcp(address) | InputSpec::Tls(address) => Some(address),
            _ => None,
        }
    }
}

impl OutputSpec {
    /// The address of a `forward://` or `forward+tls://` output, and whether
    /// it is the latter.
    pub fn forward_address(&self) -> Option<(&str, bool)> {
        match self {
            OutputSpec::Forward(address) => Some((address, false)),
            OutputSpec::ForwardTls(address) => Some((address, true)),
            _ => None,
        }
    }

    /// The address a `tcp://` or `tls://` output connects to.
    pub fn upstream_address(&self) -> Option<&str> {
        match self {
            OutputSpec::Tcp(address) | OutputSpec::Tls(address) => Some(address),
            _ => None,
        }
    }
}

/// An input or output specification that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(String);

impl SpecError {
    pub(crate) fn new(message: impl Into<String>) -> SpecError {
        SpecError(message.into())
    }
}

impl FromStr for InputSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<InputSpec, SpecError> {
        if text == "-" {
            return Ok(InputSpec::Stdin);
        }
        if let Some(path) = text.strip_prefix("file:") {
            return Ok(InputSpec::File(non_empty_path(text, path)?));
        }
        if let Some(path) = text.strip_prefix("follow:") {
            let path = non_empty_path(text, path)?;
            if !is_glob(text) {
                return Ok(InputSpec::Follow(path, RotatedNames::Builtin));
            }
            let pattern = path
                .to_str()
                .ok_or_else(|| SpecError(format!("'{text}': a pattern must be valid UTF-8")))?;
            crate::source::parse_pattern(pattern)
                .map_err(|e| SpecError(format!("'{text}': not a valid pattern: {}", e.kind())))?;
            return Ok(InputSpec::FollowGlob(
                pattern.to_string(),
                RotatedNames::Builtin,
            ));
        }
        if let Some(address) = text.strip_prefix("tcp://") {
            return Ok(InputSpec::Tcp(host_port(text, address)?));
        }
        if let Some(address) = text.strip_prefix("tls://") {
            return Ok(InputSpec::Tls(host_port(text, address)?));
        }
        if let Some(address) = text.strip_prefix("forward://") {
            return Ok(InputSpec::Forward(host_port(text, address)?));
        }
        if let Some(address) = text.strip_prefix("forward+tls://") {
            return Ok(InputSpec::ForwardTls(host_port(text, address)?));
        }
        Err(SpecError(format!(
            "unknown input '{text}': expected -, file:PATH, follow:PATH, tcp://HOST:PORT, tls://HOST:PORT, forward://HOST:PORT or forward+tls://HOST:PORT"
        )))
    }
}

impl FromStr for OutputSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<OutputSpec, SpecError> {
        if text == "-" {
            return Ok(OutputSpec::Stdout);
        }
        if let Some(path) = text.strip_prefix("file:") {
            return Ok(OutputSpec::File(non_empty_path(text, path)?));
        }
        if let Some(address) = text.strip_prefix("tcp://") {
            return Ok(OutputSpec::Tcp(host_port(text, address)?));
        }
        if let Some(address) = text.strip_prefix("tls://") {
            return Ok(OutputSpec::Tls(host_port(text, address)?));
        }
        if let Some(address) = text.strip_prefix("forward://") {
            return Ok(OutputSpec::Forward(host_port(text, address)?));
        }
        if let Some(address) = text.strip_prefix("forward+tls://") {
            return Ok(OutputSpec::ForwardTls(host_port(text, address)?));
        }
        Err(SpecError(format!(
            "unknown output '{text}': expected -, file:PATH, tcp://HOST:PORT, tls://HOST:PORT, forward://HOST:PORT or forward+tls://HOST:PORT"
        )))
    }
}

/// Whether a `follow:` path is a pattern: it holds `*`, `?`, `[` or `{`.
fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

fn non_empty_path(text: &str, path: &str) -> Result<PathBuf, SpecError> {
    if path.is_empty() {
        return Err(SpecError(format!("'{text}': the path is empty")));
    }
    Ok(PathBuf::from(path))
}

/// Checks `HOST:PORT` (HOST may be a bracketed IPv6 address).
pub(crate) fn host_port(text: &str, address: &str) -> Result<String, SpecError> {
    let bad = || SpecError(format!("'{text}': expected HOST:PORT"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    port.parse::<u16>()
        .map_err(|_| SpecError(format!("'{text}': '{port}' is not a port number")))?;
    Ok(address.to_string())
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Stdin => f.write_str("-"),
            InputSpec::File(path) => write!(f, "file:{}", path.display()),
            InputSpec::Follow(path, _) => write!(f, "follow:{}", path.display()),
            InputSpec::FollowGlob(pattern, _) => write!(f, "follow:{pattern}"),
            InputSpec::Tcp(address) => write!(f, "tcp://{address}"),
            InputSpec::Tls(address) => write!(f, "tls://{address}"),
            InputSpec::Forward(address) => write!(f, "forward://{address}"),
            InputSpec::ForwardTls(address) => write!(f, "forward+tls://{address}"),
        }
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputSpec::Stdout => f.write_str("-"),
            OutputSpec::File(path) => write!(f, "file:{}", path.display()),
            OutputSpec::Tcp(address) => write!(f, "tcp://{address}"),
            OutputSpec::Tls(address) => write!(f, "tls://{address}"),
            OutputSpec::Forward(address) => write!(f, "forward://{address}"),
            OutputSpec::ForwardTls(address) => write!(f, "forward+tls://{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_outputs_parse() {
        assert_eq!("-".parse(), Ok(InputSpec::Stdin));
        assert_eq!(
            "file:/var/log/a.log".parse(),
            Ok(InputSpec::File("/var/log/a.log".into()))
        );
        assert_eq!(
            "follow:a.log".parse(),
            Ok(InputSpec::Follow("a.log".into(), RotatedNames::Builtin))
        );
        assert_eq!(
            "follow:/var/log/pods/*/*/*.log".parse(),
            Ok(InputSpec::FollowGlob(
                "/var/log/pods/*/*/*.log".into(),
                RotatedNames::Builtin
            ))
        );
        assert_eq!(
            InputSpec::FollowGlob("/l/**/?.log".into(), RotatedNames::Builtin).to_string(),
            "follow:/l/**/?.log"
        );
        assert_eq!(
            "tcp://0.0.0.0:5170".parse(),
            Ok(InputSpec::Tcp("0.0.0.0:5170".into()))
        );
        assert_eq!(
            "tcp://[::1]:5170".parse(),
            Ok(InputSpec::Tcp("[::1]:5170".into()))
        );
        assert_eq!(
            "file:out.log".parse(),
            Ok(OutputSpec::File("out.log".into()))
        );
        assert_eq!(
            "tcp://collector:24224".parse(),
            Ok(OutputSpec::Tcp("collector:24224".into()))
        );
        assert_eq!(
            "tls://0.0.0.0:6514".parse(),
            Ok(InputSpec::Tls("0.0.0.0:6514".into()))
        );
        assert_eq!(
            "tls://collector:6514".parse(),
            Ok(OutputSpec::Tls("collector:6514".into()))
        );
        assert_eq!(
            InputSpec::Tls("[::1]:1".into()).to_string(),
            "tls://[::1]:1"
        );
        assert_eq!(OutputSpec::Tls("h:1".into()).to_string(), "tls://h:1");
        assert_eq!(
            "forward+tls://0.0.0.0:24224".parse(),
            Ok(InputSpec::ForwardTls("0.0.0.0:24224".into()))
        );
        assert_eq!(
            OutputSpec::ForwardTls("h:1".into()).to_string(),
            "forward+tls://h:1"
        );
        for line in [
            InputSpec::Follow("x".into(), RotatedNames::Builtin).to_string(),
            OutputSpec::Tcp("h:1".into()).to_string(),
        ] {
            assert!(line == "follow:x" || line == "tcp://h:1");
        }
    }

    #[test]
    fn rotated_name_patterns() {
        assert_eq!(
            RotatedNames::pattern("{name}-*.gz.log"),
            Ok(RotatedNames::Pattern {
                before: "{name}-".into(),
                after: ".gz.log".into()
            })
        );
        for (text, why) in [
            (
                "app.log",
                "one '*' is needed, for what varies between generations",
            ),
            ("a*b*", "only one '*' is allowed"),
            (
                "old/app.*",
                "a name in the followed file's directory, without '/'",
            ),
            ("app.[0-9]", "only '*' is a wildcard here"),
        ] {
            assert_eq!(
                RotatedNames::pattern(text).unwrap_err().to_string(),
                format!("rotated: '{text}': {why}")
            );
        }
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        let e = "udp://x:1".parse::<InputSpec>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown input 'udp://x:1': expected -, file:PATH, follow:PATH, tcp://HOST:PORT, tls://HOST:PORT, forward://HOST:PORT or forward+tls://HOST:PORT"
        );
        let e = "tls://host".parse::<OutputSpec>().unwrap_err();
        assert_eq!(e.to_string(), "'tls://host': expected HOST:PORT");
        let e = "tcp://host:http".parse::<InputSpec>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "'tcp://host:http': 'http' is not a port number"
        );
        assert!("follow:".parse::<InputSpec>().is_err());
        let e = "follow:/var/log/[a.log".parse::<InputSpec>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "'follow:/var/log/[a.log': not a valid pattern: unclosed character class; missing ']'"
        );
        assert!("follow:x".parse::<OutputSpec>().is_err());
        assert!("tcp://:80".parse::<OutputSpec>().is_err());
    }
}
