//! TLS on TCP inputs and outputs (`tls://HOST:PORT`), with rustls and its
//! `ring` provider.
//!
//! The settings come from the configuration file's `tls:` section: a server
//! identity (certificate chain and key) for every `tls://` input, with an
//! optional CA bundle that client certificates must chain to (mutual TLS:
//! then a client without a valid certificate is refused); and, for a
//! `tls://` output, the CA bundle the upstream's certificate must chain to,
//! the name to verify it against (and send as SNI), and an optional client
//! identity. They are loaded once, at start-up, into a [`ServerTls`] and a
//! [`ClientTls`]; a file that cannot be read or parsed is a configuration
//! error that names the file and never shows what is in it.
//!
//! There is no plaintext fallback anywhere: a `tls://` end speaks TLS or
//! nothing. A handshake runs on the connection's own task, so a slow peer
//! holds up no other, and must complete within [`HANDSHAKE_TIMEOUT`]. Once
//! it has, the connection is a [`Connection`], the same reader and writer as
//! a plaintext one, so that everything above it (framing, merging, the
//! reconnecting upstream) is the same code for both.
//!
//! No system trust store is read: a client trusts exactly the CA bundle it
//! is given (the image has none, and a log collector's certificate is
//! usually signed by a private CA).

mod connection;
mod pem;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub(crate) use connection::Connection;
pub use pem::LoadError;

/// How long a TLS handshake may take, on either side, before the
/// connection is given up on.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain (PEM, the end-entity certificate first) and its
/// private key (PEM: PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate chain file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

/// The settings of `tls://` inputs (`tls.server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// The server's certificate chain and key.
    pub identity: Identity,
    /// A CA bundle (PEM): when given, every client must present a
    /// certificate that chains to it (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// The settings of a `tls://` output (`tls.client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The CA bundle (PEM) the upstream's certificate must chain to.
    pub ca: PathBuf,
    /// The name the upstream's certificate must be valid for, also sent as
    /// SNI; without it, the output's HOST.
    pub server_name: Option<String>,
    /// A client certificate and key, for an upstream that asks for one.
    pub identity: Option<Identity>,
}

/// The TLS of a run: the server side of its `tls://` inputs and the client
/// side of its `tls://` output, each loaded only if used.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// For `tls://` inputs.
    pub server: Option<ServerTls>,
    /// For a `tls://` output.
    pub client: Option<ClientTls>,
}

/// The server side, loaded: accepts TLS connections.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    client_certificates: bool,
}

/// The client side, loaded: makes TLS connections to one server name.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

/// The crypto provider of every configuration: ring, with rustls's safe
/// defaults (TLS 1.2 and 1.3, their recommended cipher suites).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTls {
    /// Loads the server's identity and, for mutual TLS, the client CA bundle.
    pub fn load(settings: &ServerSettings) -> Result<ServerTls, LoadError> {
        let (chain, key) = pem::identity(&settings.identity)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| LoadError::new("cert", e.to_string()))?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let roots = pem::roots(path, "client_ca")?;
                // Requires a certificate of every client (no anonymous
                // clients), verified against `roots`.
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| {
                            LoadError::new("client_ca", format!("{}: {e}", path.display()))
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| pem::identity_error(&settings.identity, &e))?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_certificates: settings.client_ca.is_some(),
        })
    }

    /// The server's handshake on an accepted connection, within
    /// [`HANDSHAKE_TIMEOUT`].
    pub(crate) async fn accept(&self, stream: TcpStream) -> io::Result<Connection> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Ok(Connection::Tls(Box::new(tls.into()))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(handshake_timed_out()),
        }
    }
}

impl ClientTls {
    /// Loads the CA bundle and the client identity, if any, to connect to
    /// servers whose certificates are valid for `server_name`.
    pub fn load(
        settings: &ClientSettings,
        server_name: ServerName<'static>,
    ) -> Result<ClientTls, LoadError> {
        let roots = pem::roots(&settings.ca, "ca")?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| LoadError::new("ca", e.to_string()))?
            .with_root_certificates(roots);
        let config = match &settings.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let (chain, key) = pem::identity(identity)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| pem::identity_error(identity, &e))?
            }
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The client's handshake on a new connection, within
    /// [`HANDSHAKE_TIMEOUT`].
    pub(crate) async fn connect(&self, stream: TcpStream) -> io::Result<Connection> {
        let handshake = self.connector.connect(self.server_name.clone(), stream);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => Ok(Connection::Tls(Box::new(tls.into()))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(handshake_timed_out()),
        }
    }
}

fn handshake_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the TLS handshake did not complete within {} s",
            HANDSHAKE_TIMEOUT.as_secs()
        ),
    )
}

/// The server name `text` (a DNS name or an IP address; an IPv6 address may
/// be bracketed, as in `HOST:PORT`), as verified and sent as SNI.
pub fn server_name(text: &str) -> Result<ServerName<'static>, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    ServerName::try_from(bare.to_string())
        .map_err(|_| format!("'{text}' is not a valid DNS name or IP address"))
}

// The loaded configurations hold private keys: their `Debug` says only what
// kind of side they are.
impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_certificates", &self.client_certificates)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}
