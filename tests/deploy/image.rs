//! The container image, verified without a container engine: the Dockerfile
//! against hadolint and against what its final stage must be; the static
//! release build (`cargo static`, defined in `.cargo/config.toml`, the same
//! command the Dockerfile runs), built into its own target directory
//! (`target/static`) and checked to be fully static; and that binary run
//! with `chroot` as the image's user in a temporary root directory that holds
//! exactly what the Dockerfile's final stage copies (read from its COPY
//! lines): it must redact the shipped sample byte for byte, run a
//! configuration that includes a rule pack, and resolve its upstream by name
//! from the files a container runtime provides (/etc/hosts,
//! /etc/resolv.conf).
//!
//! chroot needs root (CAP_SYS_CHROOT). Without root the test runs the same
//! commands in an unprivileged user namespace (`unshare --user
//! --map-root-user`), as the namespace's root instead of user 65532, and says
//! so; if neither is possible the tests fail: they never pass without having
//! run the image's layout.

use std::fs;
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::IMAGE_BINARY;
use crate::common::{
    Collector, TokenGen, binary, output_with_stdin, read, repo_path, scratch, target_dir,
    transcript,
};
use crate::dockerfile::{self, Source, Stage, lay_out_final_stage};
use crate::tools::{output_of, tools};

/// The build stage's output that the final stage copies, and the command
/// that must produce it.
const STATIC_OUTPUT: &str = "target/x86_64-unknown-linux-gnu/release/logredact";

/// What the image must hold.
const IMAGE_FILES: [&str; 4] = [
    "/usr/local/bin/logredact",
    "/etc/logredact/logredact.yaml",
    "/etc/logredact/rules/common-credentials.yaml",
    "/etc/logredact/rules/json-escaped.yaml",
];

/// A note in the test output that is shown even when the test passes
/// (written to the standard error stream directly, not captured).
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "deploy::image: {text}");
}

// ---------------------------------------------------------------------------
// The static build

/// Builds the static binary with `cargo static` into `target/static`, once
/// per test process, and returns its path.
fn static_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = target_dir().join("static");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let started = Instant::now();
        // RUSTFLAGS and CARGO_ENCODED_RUSTFLAGS would replace the alias's
        // flags; the alias alone must produce the static binary.
        let output = Command::new(cargo)
            .args(["static", "--locked", "--target-dir"])
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("run cargo static");
        assert!(
            output.status.success(),
            "cargo static --locked --target-dir {} failed\n{}",
            target.display(),
            transcript(&output)
        );
        note(&format!(
            "static build: `cargo static --locked --target-dir target/static` took {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        target.join(STATIC_OUTPUT.trim_start_matches("target/"))
    })
}

/// Whether an ELF executable is fully static: no program interpreter (the
/// dynamic loader) and no shared library it needs (`DT_NEEDED`). A
/// static-pie executable has a dynamic section for its own relocations only.
fn elf_is_static(path: &Path) -> bool {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(bytes[4], 2, "64-bit ELF expected");
    assert_eq!(bytes[5], 1, "little-endian ELF expected");
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    for index in 0..phnum {
        let header = phoff + index * phentsize;
        let (kind, offset, size) = (
            u32_at(header),
            u64_at(header + 0x08) as usize,
            u64_at(header + 0x20) as usize,
        );
        if kind == PT_INTERP {
            return false;
        }
        if kind == PT_DYNAMIC {
            let needs_library = (offset..offset + size)
                .step_by(16)
                .any(|entry| u64_at(entry) == DT_NEEDED);
            if needs_library {
                return false;
            }
        }
    }
    true
}

/// The output of a tool that may be missing (`None` then).
fn tool_output(program: &str, arg: &Path) -> Option<String> {
    let output = Command::new(program).arg(arg).output().ok()?;
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[test]
fn cargo_static_builds_a_fully_static_executable_and_plain_builds_stay_dynamic() {
    let binary = static_binary();
    assert!(
        elf_is_static(binary),
        "{} has a program interpreter or needs shared libraries",
        binary.display()
    );
    match tool_output("file", binary) {
        Some(text) => {
            let described = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
            note(&format!("file: {}", described.trim()));
            assert!(
                text.contains("statically linked") || text.contains("static-pie linked"),
                "file: {text}"
            );
        }
        None => note("`file` is not installed: checked the ELF headers only"),
    }
    match tool_output("ldd", binary) {
        Some(text) => {
            note(&format!("ldd: {}", text.trim()));
            assert!(
                text.contains("statically linked") || text.contains("not a dynamic executable"),
                "ldd: {text}"
            );
        }
        None => note("`ldd` is not installed: checked the ELF headers only"),
    }
    // The alias applies its flags to the one target it names: the binary of
    // this very `cargo test` run (a plain build, whose proc-macros compiled)
    // is an ordinary dynamically linked executable.
    let plain = Path::new(env!("CARGO_BIN_EXE_logredact"));
    assert!(
        !elf_is_static(plain),
        "{} (plain cargo build) is static: the static flags leak into plain builds",
        plain.display()
    );
}

// ---------------------------------------------------------------------------
// The Dockerfile and the image's layout

#[test]
fn dockerfile_is_clean_under_hadolint() {
    let output = output_of(
        Command::new(&tools().hadolint)
            .args(["--no-color", "Dockerfile"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
        "hadolint",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Findings below the failure threshold (style) are printed with status 0.
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "hadolint Dockerfile\n{}",
        transcript(&output)
    );
}

#[test]
fn dockerfile_final_stage_is_minimal_non_root_and_built_with_cargo_static() {
    let stages = dockerfile::stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let last = stages.last().unwrap();
    assert!(
        last.from == "scratch" || last.from.starts_with("gcr.io/distroless/static"),
        "the final stage starts from scratch or distroless static, not {}",
        last.from
    );
    assert_eq!(
        last.last("USER"),
        Some("65532:65532"),
        "runs as UID/GID 65532"
    );
    assert_eq!(last.exec_form("ENTRYPOINT"), [IMAGE_BINARY]);
    assert_eq!(
        last.exec_form("CMD"),
        ["--config", "/etc/logredact/logredact.yaml"],
        "the default command runs the shipped default configuration"
    );
    assert!(
        last.all("EXPOSE").iter().any(|ports| ports
            .split_whitespace()
            .any(|p| p == "9102" || p == "9102/tcp")),
        "EXPOSE 9102 (the admin endpoint)"
    );

    let labels = last.labels();
    let label = |key: &str| -> String {
        labels
            .iter()
            .find(|(k, _)| k == &format!("org.opencontainers.image.{key}"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no org.opencontainers.image.{key} label"))
    };
    assert_eq!(label("title"), "logredact");
    assert!(!label("description").is_empty());
    assert_eq!(label("source"), "${SOURCE_URL}");
    assert_eq!(label("version"), "${VERSION}");
    let cargo_toml = read(&repo_path("Cargo.toml"));
    let package_version = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"');
    assert_eq!(
        last.arg_default("VERSION").as_deref(),
        Some(package_version),
        "the image version follows Cargo.toml"
    );
    let license = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("license = "))
        .unwrap()
        .trim_matches('"');
    assert_eq!(label("licenses"), license);

    // The binary comes from a build stage that runs `cargo static` (and does
    // not set RUSTFLAGS, which would replace the alias's flags).
    let copies = dockerfile::final_stage_copies();
    let from_stages: Vec<(&String, &String)> = copies
        .iter()
        .flat_map(|c| &c.sources)
        .filter_map(|s| match s {
            Source::Stage { stage, path } => Some((stage, path)),
            Source::Context(_) => None,
        })
        .collect();
    assert_eq!(from_stages.len(), 1, "one file from a build stage");
    let (stage_name, path) = from_stages[0];
    let build = stages
        .iter()
        .find(|s| s.name.as_deref() == Some(stage_name.as_str()))
        .unwrap_or_else(|| panic!("no build stage named {stage_name}"));
    build_stage_output(build, path);
    for env in build.all("ENV") {
        assert!(
            !env.contains("RUSTFLAGS"),
            "the build stage sets RUSTFLAGS, which replaces cargo static's flags"
        );
    }
    assert!(
        build
            .all("COPY")
            .iter()
            .any(|c| c.split_whitespace().next() == Some(".cargo")),
        "the build stage copies .cargo (where `cargo static` is defined)"
    );

    // The image holds the binary, the default configuration and the packs.
    let root = scratch("layout");
    let files = lay_out_final_stage(&root, &|_, _| Some(static_binary_placeholder(&root)));
    for file in IMAGE_FILES {
        assert!(files.iter().any(|f| f == file), "the image has no {file}");
    }
    for file in &files {
        assert!(
            file.starts_with("/usr/local/bin/") || file.starts_with("/etc/logredact/"),
            "{file}: the image holds the binary and its configuration only"
        );
    }
    assert_eq!(
        fs::read(root.join("etc/logredact/logredact.yaml")).unwrap(),
        fs::read(repo_path("config/logredact.yaml")).unwrap(),
        "/etc/logredact/logredact.yaml is the shipped default"
    );
}

/// A stand-in file for the binary in the layout check (no build needed).
fn static_binary_placeholder(root: &Path) -> PathBuf {
    let path = root.with_extension("binary");
    fs::write(&path, b"stand-in").unwrap();
    path
}

/// Checks that `stage` produces `path` from `cargo static`'s output.
fn build_stage_output(stage: &Stage, path: &str) {
    let runs = stage.all("RUN");
    assert!(
        runs.iter().any(|run| run
            .split("&&")
            .any(|step| step.split_whitespace().take(2).eq(["cargo", "static"]))),
        "the build stage runs `cargo static`: {runs:?}"
    );
    assert!(
        runs.iter().any(
            |run| run.split("&&").any(|step| step.split_whitespace().eq([
                "cp",
                STATIC_OUTPUT,
                path
            ]))
        ),
        "the build stage copies {STATIC_OUTPUT} to {path}: {runs:?}"
    );
}

/// Lays out the final stage under a fresh `name` directory, with the binary
/// built by `cargo static` for what the build stage produces.
fn image_root(name: &str) -> PathBuf {
    let binary = static_binary().to_path_buf();
    let stages = dockerfile::stages();
    let root = scratch(name).join("root");
    lay_out_final_stage(&root, &|stage_name, path| {
        let stage = stages
            .iter()
            .find(|s| s.name.as_deref() == Some(stage_name))
            .unwrap_or_else(|| panic!("no build stage named {stage_name}"));
        build_stage_output(stage, path);
        Some(binary.clone())
    });
    root
}

// ---------------------------------------------------------------------------
// Running in the root directory

/// How the tests enter the root directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Jail {
    /// As root: `chroot --userspec=65532:65532`.
    Root,
    /// Not root: `unshare --user --map-root-user chroot`, as the namespace's
    /// root (no --userspec: the namespace maps one user only).
    UserNamespace,
}

fn jail() -> Jail {
    static JAIL: OnceLock<Result<Jail, String>> = OnceLock::new();
    let found = JAIL.get_or_init(|| {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("cannot run `id -u`: {e}"))?;
        if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
            return Ok(Jail::Root);
        }
        let unshare = Command::new("unshare")
            .args(["--user", "--map-root-user", "chroot", "/", "true"])
            .output();
        match unshare {
            Ok(output) if output.status.success() => {
                note(
                    "not root: running chroot inside an unprivileged user namespace \
                     (unshare --user --map-root-user), as the namespace's root instead of \
                     user 65532 (the image's USER is not exercised)",
                );
                Ok(Jail::UserNamespace)
            }
            Ok(output) => Err(format!(
                "unshare --user --map-root-user chroot / true failed\n{}",
                transcript(&output)
            )),
            Err(e) => Err(format!("cannot run unshare: {e}")),
        }
    });
    match found {
        Ok(jail) => *jail,
        Err(why) => panic!(
            "cannot enter a root directory: chroot needs root (CAP_SYS_CHROOT), and \
             unprivileged user namespaces are not available either. The image's layout \
             was NOT verified; run this test as root.\n{why}"
        ),
    }
}

/// The image user from the Dockerfile's USER line (`UID:GID`).
fn image_user() -> String {
    dockerfile::stages()
        .last()
        .unwrap()
        .last("USER")
        .expect("the final stage sets USER")
        .to_string()
}

/// A command that runs `argv` inside `root` as the image's user.
fn in_root(root: &Path, argv: &[String]) -> Command {
    let mut command = match jail() {
        Jail::Root => {
            let mut c = Command::new("chroot");
            c.arg(format!("--userspec={}", image_user()));
            c
        }
        Jail::UserNamespace => {
            let mut c = Command::new("unshare");
            c.args(["--user", "--map-root-user", "chroot"]);
            c
        }
    };
    // The environment of a container: nothing but a PATH.
    command.arg(root).args(argv).env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    command
}

/// The image's ENTRYPOINT followed by `args` (or by its CMD when `None`).
fn image_argv(args: Option<&[&str]>) -> Vec<String> {
    let stages = dockerfile::stages();
    let last = stages.last().unwrap();
    let mut argv = last.exec_form("ENTRYPOINT");
    match args {
        Some(args) => argv.extend(args.iter().map(|a| a.to_string())),
        None => argv.extend(last.exec_form("CMD")),
    }
    argv
}

#[test]
fn image_root_redacts_the_sample_exactly_as_the_image_user() {
    let root = image_root("sample");
    let argv = image_argv(None);
    assert_eq!(
        argv,
        [IMAGE_BINARY, "--config", "/etc/logredact/logredact.yaml"]
    );
    let sample = fs::read(repo_path("tests/data/sample.log")).unwrap();
    let expected = fs::read(repo_path("tests/data/sample.redacted.log")).unwrap();
    let output = output_with_stdin(in_root(&root, &argv), &sample);
    assert!(
        output.status.code() == Some(0),
        "{argv:?} in the image root\n{}",
        transcript(&output)
    );
    assert!(
        output.stdout == expected,
        "the output differs from tests/data/sample.redacted.log\n{}",
        transcript(&output)
    );
    if jail() == Jail::Root {
        note(&format!(
            "ran `chroot --userspec={} ROOT {}` on tests/data/sample.log: output identical to \
             tests/data/sample.redacted.log, exit status 0",
            image_user(),
            argv.join(" ")
        ));
    }
}

#[test]
fn image_root_runs_a_configuration_that_includes_the_credential_pack() {
    let root = image_root("pack");
    // A configuration placed next to the shipped packs, as a user mounts one
    // into /etc/logredact.
    let config = root.join("etc/logredact/with-credentials.yaml");
    fs::write(
        &config,
        "# The built-in rule and the credential pack.\ninclude: [rules/common-credentials.yaml]\n",
    )
    .unwrap();

    let mut tokens = TokenGen::new(0x5717);
    let upper: String = (0..16)
        .map(|_| {
            char::from(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[tokens.next_u64() as usize % 36])
        })
        .collect();
    let alnum: String = (0..36)
        .map(|_| {
            char::from(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    [tokens.next_u64() as usize % 62],
            )
        })
        .collect();
    let aws = format!("AKIA{upper}");
    let github = format!("ghp_{alnum}");
    let databricks = tokens.token();
    let mut input = fs::read(repo_path("tests/data/sample.log")).unwrap();
    input.extend_from_slice(
        format!("\naws_access_key_id={aws}\nGITHUB_TOKEN={github} and Bearer {databricks}\n")
            .as_bytes(),
    );

    let output = output_with_stdin(
        in_root(
            &root,
            &image_argv(Some(&["--config", "/etc/logredact/with-credentials.yaml"])),
        ),
        &input,
    );
    assert!(output.status.code() == Some(0), "{}", transcript(&output));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    for secret in [&aws, &github, &databricks] {
        assert!(
            !text.contains(secret.as_str()),
            "a credential went through:\n{text}"
        );
    }
    for mask in [
        "aws-access-key-id****",
        "github-token****",
        "Bearer dapi****",
    ] {
        assert!(text.contains(mask), "no {mask} in\n{text}");
    }
    // Byte for byte what the ordinary build makes of the same configuration
    // and packs outside the root.
    let mut plain = binary();
    plain.arg("--config").arg(&config);
    let reference = output_with_stdin(plain, &input);
    assert!(reference.status.success(), "{}", transcript(&reference));
    assert!(
        output.stdout == reference.stdout,
        "the static binary in the root and the plain build differ"
    );

    // The configuration for JSON logs shipped in the image adds the
    // JSON-escape pack: the token after the \t escape is masked too.
    let json = output_with_stdin(
        in_root(
            &root,
            &image_argv(Some(&["--config", "/etc/logredact/logredact-json.yaml"])),
        ),
        format!("{{\"msg\":\"key\\t{databricks}\"}}\n").as_bytes(),
    );
    assert!(json.status.code() == Some(0), "{}", transcript(&json));
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        "{\"msg\":\"key\\tdapi****\"}\n"
    );
}

// ---------------------------------------------------------------------------
// Name resolution in the root directory

/// A DNS server on a loopback address, port 53, answering A queries for
/// `name` with 127.0.0.1 (and every other query with no address), until
/// dropped.
struct DnsServer {
    address: String,
    stop: Arc<AtomicBool>,
    queries: Arc<std::sync::Mutex<Vec<String>>>,
}

impl DnsServer {
    fn start(name: &str) -> Result<DnsServer, String> {
        // A loopback address of its own, so that a resolver already on
        // 127.0.0.1:53 does not matter.
        let address = format!("127.53.{}.{}", std::process::id() % 200 + 1, 53);
        let socket = UdpSocket::bind((address.as_str(), 53))
            .map_err(|e| format!("cannot bind {address}:53: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop_flag, seen, name) = (Arc::clone(&stop), Arc::clone(&queries), name.to_string());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while !stop_flag.load(Ordering::SeqCst) {
                let Ok((len, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some((reply, asked)) = dns_reply(&buffer[..len], &name) {
                    seen.lock().unwrap().push(asked);
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Ok(DnsServer {
            address,
            stop,
            queries,
        })
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The reply to one DNS query: an A record 127.0.0.1 for `name`, no
/// records for other types of `name`, NXDOMAIN for other names.
fn dns_reply(query: &[u8], name: &str) -> Option<(Vec<u8>, String)> {
    if query.len() < 12 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    while *query.get(at)? != 0 {
        let len = query[at] as usize;
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).into_owned());
        at += 1 + len;
    }
    let question_end = at + 5;
    let kind = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    let asked = labels.join(".");
    let known = asked.eq_ignore_ascii_case(name);
    let mut reply = query[..2].to_vec();
    reply.extend_from_slice(if known { &[0x81, 0x80] } else { &[0x81, 0x83] });
    let answers: u16 = if known && kind == 1 { 1 } else { 0 };
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    if answers == 1 {
        // Name (pointer to the question), type A, class IN, TTL 5, 4 bytes.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]);
    }
    Some((reply, format!("{asked} type {kind}")))
}

/// Runs the sample through the image root with `--output tcp://NAME:PORT`
/// and returns what the collector received.
fn forward_sample_by_name(root: &Path, name: &str) -> Vec<u8> {
    let collector = Collector::start(0);
    let sample = fs::read(repo_path("tests/data/sample.log")).unwrap();
    let output_spec = format!("tcp://{name}:{}", collector.port);
    let output = output_with_stdin(
        in_root(
            root,
            &image_argv(Some(&[
                "--config",
                "/etc/logredact/logredact.yaml",
                "--output",
                &output_spec,
            ])),
        ),
        &sample,
    );
    assert!(
        output.status.code() == Some(0),
        "--output {output_spec} in the image root\n{}",
        transcript(&output)
    );
    let expected_len = fs::read(repo_path("tests/data/sample.redacted.log"))
        .unwrap()
        .len();
    collector
        .wait_for_total(expected_len, Duration::from_secs(10))
        .concat()
}

#[test]
fn image_root_resolves_its_upstream_from_the_runtimes_hosts_and_resolv_conf() {
    let expected = fs::read(repo_path("tests/data/sample.redacted.log")).unwrap();

    // /etc/hosts, as Docker and the kubelet mount one into every container.
    let root = image_root("resolve");
    fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.1 collector-by-hosts.logredact.test\n",
    )
    .unwrap();
    let received = forward_sample_by_name(&root, "collector-by-hosts.logredact.test");
    assert!(received == expected, "via /etc/hosts: {received:?}");

    // DNS through /etc/resolv.conf, as a Service name is resolved in a pod.
    let name = "log-collector.logging.svc.cluster.logredact.test";
    let server = match DnsServer::start(name) {
        Ok(server) => server,
        Err(why) if jail() == Jail::UserNamespace => {
            note(&format!(
                "DNS resolution NOT verified (a DNS server needs port 53, which needs root): {why}"
            ));
            return;
        }
        Err(why) => panic!("cannot start the test DNS server: {why}"),
    };
    fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    fs::write(
        root.join("etc/resolv.conf"),
        format!(
            "nameserver {}\noptions timeout:2 attempts:2\n",
            server.address
        ),
    )
    .unwrap();
    let received = forward_sample_by_name(&root, name);
    let queries = server.queries.lock().unwrap().clone();
    assert!(received == expected, "via DNS ({queries:?}): {received:?}");
    assert!(
        queries.iter().any(|q| q == &format!("{name} type 1")),
        "the name was not looked up by DNS: {queries:?}"
    );
}
