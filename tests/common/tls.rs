//! TLS peers for the tests: certificates made at test time with the
//! `openssl` command-line tool (Debian's `openssl` package), and OpenSSL's
//! `s_server` as a TLS collector nobody here wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{Running, scratch, transcript, wait_for_listener};

/// Runs the `openssl` command-line tool in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl (Debian's openssl package) is needed: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?}\n{}",
        transcript(&output)
    );
}

/// Certificates made once per test process, in its scratch directory:
///
/// - `ca`, and `other-ca` (a CA nobody trusts);
/// - `server`, signed by `ca`, for `localhost` and `127.0.0.1`;
/// - `other-server`, the same names, signed by `other-ca`;
/// - `client`, signed by `ca`, for client authentication.
///
/// Each `NAME.crt` with its `NAME.key` (EC P-256, PKCS#8).
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// The PKI of this test process, made at the first call.
    pub fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let dir = scratch("pki");
            for ca in ["ca", "other-ca"] {
                new_key(&dir, ca);
                openssl(
                    &dir,
                    &[
                        "req",
                        "-x509",
                        "-new",
                        "-key",
                        &format!("{ca}.key"),
                        "-out",
                        &format!("{ca}.crt"),
                        "-days",
                        "2",
                        "-subj",
                        &format!("/CN=logredact test {ca}"),
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ],
                );
            }
            let server = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
            signed(&dir, "server", "ca", server, 2);
            signed(&dir, "other-server", "other-ca", server, 3);
            signed(&dir, "client", "ca", "extendedKeyUsage=clientAuth\n", 4);
            Pki { dir }
        })
    }

    /// The path of a file of the PKI (`ca.crt`, `server.key`, ...).
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }
}

fn new_key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
}

/// `NAME.crt` (and its key), signed by the CA `ca`, with the X.509v3
/// `extensions` of a leaf certificate.
fn signed(dir: &Path, name: &str, ca: &str, extensions: &str, serial: u32) {
    new_key(dir, name);
    let (key, csr, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN=logredact test {name}"),
            "-out",
            &csr,
        ],
    );
    std::fs::write(
        dir.join(&ext),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// `openssl s_server` on 127.0.0.1:`port` with the certificate `cert` of
/// the PKI (`server`, `other-server`), printing what it receives (and
/// nothing else) on its standard output; returns once it listens. Its
/// standard input stays open: at its end s_server would close the
/// connection.
pub fn s_server(port: u16, cert: &str, extra: &[&str]) -> Running {
    let pki = Pki::get();
    let mut command = Command::new("openssl");
    command
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", &pki.path(&format!("{cert}.crt"))])
        .args(["-key", &pki.path(&format!("{cert}.key"))])
        .arg("-quiet")
        .args(extra);
    let run = Running::start(&mut command, Stdio::piped());
    wait_for_listener(port);
    run
}

/// A TLS collector: `openssl s_server` on 127.0.0.1:`port` with the PKI's
/// `server` certificate, serving one connection after another; what every
/// connection sent, in the order served, is its standard output.
pub struct TlsCollector {
    pub port: u16,
    server: Running,
}

impl TlsCollector {
    pub fn start(port: u16) -> TlsCollector {
        TlsCollector {
            port,
            server: s_server(port, "server", &[]),
        }
    }

    /// Waits until `total` bytes have arrived in all, or `deadline`; what
    /// has.
    pub fn wait_for_total(&mut self, total: usize, deadline: Duration) -> Vec<u8> {
        self.server.read_at_least(total, deadline).to_vec()
    }
}
