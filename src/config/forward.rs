//! The `forward:` section: the Fluent forward protocol's handshake, for
//! forward inputs (`input:`: logredact checks its senders) and the forward
//! output (`output:`: logredact proves itself to the next hop).
//!
//! ```yaml
//! forward:
//!   input:
//!     shared_key: ${FLUENT_SHARED_KEY}
//!     self_hostname: logredact          # default: the host's name
//!     users: [{ username: fluent-bit, password: "${FLUENT_PASSWORD}" }]   # quoted: `{` ends a plain scalar in a flow mapping
//!   output:
//!     shared_key: ${COLLECTOR_SHARED_KEY}
//!     username: logredact               # with password, if the next hop has users
//!     password: ${COLLECTOR_PASSWORD}
//!   max_message_bytes: 16777216         # the longest message read (default 16 MiB)
//!   max_decompressed_bytes: 67108864    # gzipped entries inflate to at most this (default 64 MiB)
//! ```
//!
//! Keys and passwords are secrets: they are never printed (their `Debug` is
//! `****`), and values the environment inserted are concealed from errors.

use std::fmt;

use serde::Deserialize;

use crate::config::error::ConfigError;
use crate::config::interpolate::Interpolation;
use crate::config::locate::{SourceText, Step};

/// A shared key or a password: compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes, to hash.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// What a forward input asks of its senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardServerAuth {
    /// The key every sender must prove it knows.
    pub shared_key: Secret,
    /// The name logredact gives itself in the handshake.
    pub self_hostname: String,
    /// Users and their passwords; none: no user authentication.
    pub users: Vec<(String, Secret)>,
}

/// What the forward output proves to the next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardClientAuth {
    /// The key the next hop shares.
    pub shared_key: Secret,
    /// The name logredact gives itself in the handshake.
    pub self_hostname: String,
    /// A user name and password, if the next hop asks for them.
    pub user: Option<(String, Secret)>,
}

/// The default of `forward.max_message_bytes` (16 MiB): above Fluent Bit's
/// chunks (about 2 MB) and Fluentd's memory buffer chunks (8 MB by default).
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The default of `forward.max_decompressed_bytes` (64 MiB): a small
/// message must not become gigabytes in memory.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// The forward section: the handshake of forward inputs and output (`None`:
/// no handshake on that side), and the limits on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSecurity {
    /// Forward inputs.
    pub input: Option<ForwardServerAuth>,
    /// The forward output.
    pub output: Option<ForwardClientAuth>,
    /// The longest message a forward input reads, in bytes.
    pub max_message: usize,
    /// The most bytes the gzipped entries of one message may inflate to.
    pub max_decompressed: usize,
}

impl Default for ForwardSecurity {
    fn default() -> ForwardSecurity {
        ForwardSecurity {
            input: None,
            output: None,
            max_message: DEFAULT_MAX_MESSAGE,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ForwardFormat {
    input: Option<InputFormat>,
    output: Option<OutputFormat>,
    max_message_bytes: Option<usize>,
    max_decompressed_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFormat {
    shared_key: String,
    self_hostname: Option<String>,
    #[serde(default)]
    users: Vec<UserFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFormat {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputFormat {
    shared_key: String,
    self_hostname: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Interpolates environment variables in every value of the section.
pub(super) fn interpolate(
    format: &mut ForwardFormat,
    interpolation: &mut Interpolation<'_>,
    source: &SourceText,
    origin: &str,
) -> Result<(), ConfigError> {
    use Step::{Index, Key};
    let mut values: Vec<(&mut String, Vec<Step<'_>>)> = Vec::new();
    if let Some(input) = &mut format.input {
        let at = |key| vec![Key("forward"), Key("input"), Key(key)];
        values.push((&mut input.shared_key, at("shared_key")));
        if let Some(name) = &mut input.self_hostname {
            values.push((name, at("self_hostname")));
        }
        for (index, user) in input.users.iter_mut().enumerate() {
            let at = |key| {
                vec![
                    Key("forward"),
                    Key("input"),
                    Key("users"),
                    Index(index),
                    Key(key),
                ]
            };
            values.push((&mut user.username, at("username")));
            values.push((&mut user.password, at("password")));
        }
    }
    if let Some(output) = &mut format.output {
        let at = |key| vec![Key("forward"), Key("output"), Key(key)];
        values.push((&mut output.shared_key, at("shared_key")));
        for (value, key) in [
            (&mut output.self_hostname, "self_hostname"),
            (&mut output.username, "username"),
            (&mut output.password, "password"),
        ] {
            if let Some(value) = value {
                values.push((value, at(key)));
            }
        }
    }
    for (value, path) in values {
        interpolation.value(value, source, origin, &path)?;
    }
    Ok(())
}

/// The section's settings, checked; `at` locates an error.
pub(super) fn settings(
    format: Option<ForwardFormat>,
    at: impl Fn(&[Step<'_>], String) -> ConfigError,
) -> Result<ForwardSecurity, ConfigError> {
    use Step::Key;
    let Some(format) = format else {
        return Ok(ForwardSecurity::default());
    };
    let key = |side: &'static str, key: String| {
        if key.is_empty() {
            Err(at(
                &[Key("forward"), Key(side), Key("shared_key")],
                format!("forward.{side}.shared_key must not be empty"),
            ))
        } else {
            Ok(Secret(key))
        }
    };
    let input = match format.input {
        None => None,
        Some(input) => {
            let mut users = Vec::new();
            for user in input.users {
                if user.username.is_empty() {
                    return Err(at(
                        &[Key("forward"), Key("input"), Key("users")],
                        "forward.input.users: a user name must not be empty".into(),
                    ));
                }
                users.push((user.username, Secret(user.password)));
            }
            Some(ForwardServerAuth {
                shared_key: key("input", input.shared_key)?,
                self_hostname: input.self_hostname.unwrap_or_else(host_name),
                users,
            })
        }
    };
    let output = match format.output {
        None => None,
        Some(output) => {
            let user = match (output.username, output.password) {
                (Some(name), Some(password)) => Some((name, Secret(password))),
                (None, None) => None,
                _ => {
                    return Err(at(
                        &[Key("forward"), Key("output")],
                        "forward.output: username and password go together".into(),
                    ));
                }
            };
            Some(ForwardClientAuth {
                shared_key: key("output", output.shared_key)?,
                self_hostname: output.self_hostname.unwrap_or_else(host_name),
                user,
            })
        }
    };
    let limit = |value: Option<usize>, key: &'static str, default: usize| match value {
        None => Ok(default),
        Some(bytes) if bytes >= 1024 => Ok(bytes),
        Some(_) => Err(at(
            &[Key("forward"), Key(key)],
            format!("forward.{key} must be at least 1024"),
        )),
    };
    Ok(ForwardSecurity {
        input,
        output,
        max_message: limit(
            format.max_message_bytes,
            "max_message_bytes",
            DEFAULT_MAX_MESSAGE,
        )?,
        max_decompressed: limit(
            format.max_decompressed_bytes,
            "max_decompressed_bytes",
            DEFAULT_MAX_DECOMPRESSED,
        )?,
    })
}

/// The host's name, or `logredact` if it has none.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is
    // given, which this function owns.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let len = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..len]) {
        Ok(name) if result == 0 && !name.is_empty() => name.to_string(),
        _ => "logredact".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn keys_and_passwords_are_read_checked_and_never_printed() {
        let config = Config::parse(
            "forward:\n  input: { shared_key: 'in key', self_hostname: hop, users: [{ username: u, password: 'in pw' }] }\n  output: { shared_key: 'out key', username: me, password: 'out pw' }\n",
            "f.yaml",
            None,
        )
        .unwrap();
        let input = config.forward.input.as_ref().unwrap();
        assert_eq!(input.shared_key.expose(), b"in key");
        assert_eq!(input.self_hostname, "hop");
        assert_eq!(input.users[0].0, "u");
        let output = config.forward.output.as_ref().unwrap();
        assert_eq!(output.user.as_ref().unwrap().1.expose(), b"out pw");
        assert!(!output.self_hostname.is_empty());
        let printed = format!("{config:?}");
        for secret in ["in key", "in pw", "out key", "out pw"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        for (text, error) in [
            (
                "forward: { output: { shared_key: k, username: me } }\n",
                "f.yaml:1:20: forward.output: username and password go together",
            ),
            (
                "forward: { input: { shared_key: '' } }\n",
                "f.yaml:1:33: forward.input.shared_key must not be empty",
            ),
        ] {
            let e = Config::parse(text, "f.yaml", None).unwrap_err();
            assert_eq!(e.to_string(), error);
        }
        assert!(Config::parse("forward: { input: { key: k } }\n", "f.yaml", None).is_err());
        let limits = Config::parse(
            "forward: { max_message_bytes: 2048, max_decompressed_bytes: 4096 }\n",
            "f.yaml",
            None,
        )
        .unwrap()
        .forward;
        assert_eq!((limits.max_message, limits.max_decompressed), (2048, 4096));
        assert_eq!(
            Config::parse("forward: { max_message_bytes: 10 }\n", "f.yaml", None)
                .unwrap_err()
                .to_string(),
            "f.yaml:1:31: forward.max_message_bytes must be at least 1024"
        );
    }
}
