//! The `tls:` section of the configuration file, and the TLS a run loads
//! from it.
//!
//! ```yaml
//! tls:
//!   server:                 # every tls:// input
//!     cert: /etc/logredact/tls/tls.crt
//!     key: /etc/logredact/tls/tls.key
//!     client_ca: /etc/logredact/tls/clients-ca.crt   # optional: mutual TLS
//!   client:                 # a tls:// output
//!     ca: /etc/logredact/tls/ca.crt
//!     server_name: collector.example.com             # optional: else the HOST
//!     cert: /etc/logredact/tls/client.crt            # optional, with key
//!     key: /etc/logredact/tls/client.key
//! ```
//!
//! The file is checked when it is parsed (paths not empty, a client `cert`
//! with its `key`, a valid `server_name`). The files are read when a run's
//! settings are resolved, and only for a side a `tls://` end uses, so that a
//! shared file can carry settings that some of its users do not need. A
//! `tls://` end without its side's settings is refused, and so is a plaintext
//! `tcp://` end beside TLS settings that nothing uses: a `tcp://` written for
//! `tls://` would otherwise send in the clear without a word.

use serde::Deserialize;

use crate::config::locate::Step;
use crate::config::{Config, ConfigError, InputSpec, OutputSpec};
use crate::tls::{
    ClientSettings, ClientTls, Identity, LoadError, ServerSettings, ServerTls, Tls, server_name,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFormat {
    server: Option<ServerFormat>,
    client: Option<ClientFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFormat {
    cert: String,
    key: String,
    client_ca: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFormat {
    ca: String,
    server_name: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// The `tls:` settings of a configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `tls.server`: for `tls://` inputs.
    pub server: Option<ServerSettings>,
    /// `tls.client`: for a `tls://` output.
    pub client: Option<ClientSettings>,
}

/// Where a run's inputs, or its output, were given: messages about them
/// point there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenIn {
    /// The configuration file (`inputs:`, `output:`).
    File,
    /// The command line (`--input`, `--output`).
    CommandLine,
}

/// A located error: the file's origin, and the position of the value at a
/// path, if found.
type At<'a> = &'a dyn Fn(&[Step<'_>], String) -> ConfigError;

impl TlsFormat {
    /// Every text value, with its path, for interpolation.
    pub(super) fn values(&mut self) -> Vec<(&mut String, [Step<'static>; 3])> {
        use Step::Key;
        let mut values = Vec::new();
        if let Some(server) = &mut self.server {
            let at = |key| [Key("tls"), Key("server"), Key(key)];
            values.push((&mut server.cert, at("cert")));
            values.push((&mut server.key, at("key")));
            if let Some(client_ca) = &mut server.client_ca {
                values.push((client_ca, at("client_ca")));
            }
        }
        if let Some(client) = &mut self.client {
            let at = |key| [Key("tls"), Key("client"), Key(key)];
            values.push((&mut client.ca, at("ca")));
            for (value, key) in [
                (&mut client.server_name, "server_name"),
                (&mut client.cert, "cert"),
                (&mut client.key, "key"),
            ] {
                if let Some(value) = value {
                    values.push((value, at(key)));
                }
            }
        }
        values
    }

    /// The settings, checked: no empty path, a client certificate with its
    /// key, a valid server name.
    pub(super) fn settings(self, at: At<'_>) -> Result<TlsSettings, ConfigError> {
        use Step::Key;
        let path = |side: &'static str, key: &'static str, value: String| {
            if value.is_empty() {
                return Err(at(
                    &[Key("tls"), Key(side), Key(key)],
                    format!("tls.{side}.{key}: the path is empty"),
                ));
            }
            Ok(std::path::PathBuf::from(value))
        };
        let server = match self.server {
            None => None,
            Some(server) => Some(ServerSettings {
                identity: Identity {
                    cert: path("server", "cert", server.cert)?,
                    key: path("server", "key", server.key)?,
                },
                client_ca: server
                    .client_ca
                    .map(|ca| path("server", "client_ca", ca))
                    .transpose()?,
            }),
        };
        let client = match self.client {
            None => None,
            Some(client) => {
                let identity = match (client.cert, client.key) {
                    (None, None) => None,
                    (Some(cert), Some(key)) => Some(Identity {
                        cert: path("client", "cert", cert)?,
                        key: path("client", "key", key)?,
                    }),
                    (cert, _) => {
                        let (given, missing) = match cert {
                            Some(_) => ("cert", "key"),
                            None => ("key", "cert"),
                        };
                        return Err(at(
                            &[Key("tls"), Key("client"), Key(given)],
                            format!(
                                "tls.client.{given} needs tls.client.{missing}: a client certificate goes with its key"
                            ),
                        ));
                    }
                };
                if let Some(name) = &client.server_name {
                    server_name(name).map_err(|why| {
                        at(
                            &[Key("tls"), Key("client"), Key("server_name")],
                            format!("tls.client.server_name: {why}"),
                        )
                    })?;
                }
                Some(ClientSettings {
                    ca: path("client", "ca", client.ca)?,
                    server_name: client.server_name,
                    identity,
                })
            }
        };
        Ok(TlsSettings { server, client })
    }
}

impl Config {
    /// Loads the TLS that the inputs and the output use (as they are now,
    /// after the command line's), reading the certificate, key and CA files
    /// of each side in use; `inputs` and `output` say where those were
    /// given, for messages. A `tls://` end needs its side's settings, and a
    /// plaintext `tcp://` end is refused where its side's settings are set
    /// and no `tls://` end uses them.
    pub fn load_tls(&self, inputs: GivenIn, output: GivenIn) -> Result<Tls, ConfigError> {
        self.load_tls_located(inputs, output)
            .map_err(|error| self.concealed.conceal(error))
    }

    fn load_tls_located(&self, inputs: GivenIn, output: GivenIn) -> Result<Tls, ConfigError> {
        use Step::{Index, Key};
        let is_tls =
            |input: &InputSpec| matches!(input, InputSpec::Tls(_) | InputSpec::ForwardTls(_));
        let is_tcp = |input: &InputSpec| matches!(input, InputSpec::Tcp(_) | InputSpec::Forward(_));
        let input_error = |index: usize, message: String| {
            self.spec_error(
                inputs,
                &[Key("inputs"), Index(index)],
                "--input",
                "inputs",
                &self.inputs[index],
                message,
            )
        };
        let output_error = |message: String| {
            self.spec_error(
                output,
                &[Key("output")],
                "--output",
                "output",
                &self.output,
                message,
            )
        };
        let settings = &self.tls;
        let tls_input = self.inputs.iter().position(is_tls);
        let server = match (tls_input, &settings.server) {
            (Some(index), None) => {
                let problem = format!(
                    "needs tls.server.cert and tls.server.key{}",
                    in_the_file(inputs)
                );
                return Err(input_error(index, problem));
            }
            (None, Some(_)) => {
                if let Some(index) = self.inputs.iter().position(is_tcp) {
                    let problem = plaintext(&self.inputs[index], "server", inputs);
                    return Err(input_error(index, problem));
                }
                None
            }
            (Some(_), Some(server)) => {
                Some(ServerTls::load(server).map_err(|e| self.setting_error("server", &e))?)
            }
            (None, None) => None,
        };
        let client = match (&self.output, &settings.client) {
            (OutputSpec::Tls(_) | OutputSpec::ForwardTls(_), None) => {
                let problem = format!("needs tls.client.ca{}", in_the_file(output));
                return Err(output_error(problem));
            }
            (OutputSpec::Tcp(_) | OutputSpec::Forward(_), Some(_)) => {
                return Err(output_error(plaintext(&self.output, "client", output)));
            }
            (OutputSpec::Tls(address) | OutputSpec::ForwardTls(address), Some(client)) => {
                let name = match &client.server_name {
                    Some(name) => server_name(name),
                    None => server_name(host(address)).map_err(|why| {
                        format!("cannot be verified: {why}; set tls.client.server_name to the name its certificate is for")
                    }),
                };
                let name = name.map_err(output_error)?;
                Some(ClientTls::load(client, name).map_err(|e| self.setting_error("client", &e))?)
            }
            _ => None,
        };
        Ok(Tls { server, client })
    }

    /// `problem` with the input or output `spec`, located where it was
    /// given: at its value in the file, or at the command line's flag.
    fn spec_error(
        &self,
        given: GivenIn,
        path: &[Step<'_>],
        flag: &str,
        key: &str,
        spec: &dyn std::fmt::Display,
        problem: String,
    ) -> ConfigError {
        match given {
            GivenIn::File => ConfigError::new(&self.origin, format!("{key}: {spec} {problem}"))
                .at(self.text.locate(path)),
            GivenIn::CommandLine => ConfigError::new(&format!("{flag} {spec}"), problem),
        }
    }

    /// A setting of `tls.<side>` that could not be loaded, located at its
    /// value.
    fn setting_error(&self, side: &str, error: &LoadError) -> ConfigError {
        let path = [Step::Key("tls"), Step::Key(side), Step::Key(error.setting)];
        let position = self
            .text
            .locate(&path)
            .or_else(|| self.text.locate(&path[..2]));
        ConfigError::new(&self.origin, format!("tls.{side}.{error}")).at(position)
    }
}

/// Why a plaintext end (given in `given`) is refused beside the settings of
/// `side`.
fn plaintext(spec: &dyn std::fmt::Display, side: &str, given: GivenIn) -> String {
    let text = spec.to_string();
    let secure = match text.strip_prefix("forward://") {
        Some(address) => format!("forward+tls://{address}"),
        None => format!("tls://{}", text.strip_prefix("tcp://").unwrap_or(&text)),
    };
    format!(
        "is plaintext, but tls.{side} is set{}: write {secure} to use TLS, or remove tls.{side}",
        in_the_file(given)
    )
}

/// Where TLS settings are, for a message about an end given on the command
/// line (for one in the file, it goes without saying).
fn in_the_file(given: GivenIn) -> &'static str {
    match given {
        GivenIn::File => "",
        GivenIn::CommandLine => " in the configuration file (--config)",
    }
}

/// The HOST of `HOST:PORT`.
fn host(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}
