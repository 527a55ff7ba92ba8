//! The deployment configurations under `deploy/` and the Dockerfile: the
//! Kubernetes manifests against the Kubernetes API schemas
//! (`kubernetes-validate --strict`), the Dockerfile against hadolint, and the
//! Kubernetes, Fluent Bit and Fluentd configurations against what logredact's
//! integration relies on (hardening, probes, the command-line interface of
//! SPEC §9, the exec input's `Threaded`/`Oneshot`/`Buf_Size`, consistent
//! ports, identical classic and YAML variants).
//!
//! The validators come from PyPI, pinned in `tests/tools/requirements.txt`.
//! This test installs them itself into a virtual environment under the target
//! directory (`target/tools-venv`), once per change of the requirements file,
//! under a lock file so that concurrent test processes do not race. A test
//! fails — it never skips — when they cannot be installed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use logredact::config::{InputSpec, OutputSpec};
use serde_json::Value;

mod common;
mod deploy_support;

use common::{scratch, token_regex, transcript};
use deploy_support::{base64_decode, fluentd_parameters, read, repo_path, target_dir};

/// Kubernetes versions the manifests are validated against: the oldest they
/// claim (native sidecar containers are on by default from 1.29) and the
/// newest whose schemas the pinned kubernetes-validate bundles.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// The options of `logredact` that deployments may use (SPEC §9).
const CLI_OPTIONS: [&str; 9] = [
    "--config",
    "--input",
    "--output",
    "--audit",
    "--admin",
    "--fingerprint-key-file",
    "--state-dir",
    "--shutdown-grace",
    "--log-format",
];

/// The documentation placeholders that may appear token-shaped in committed
/// files (SPEC §1).
const PLACEHOLDER_TOKENS: [&str; 3] = [
    "dapi00000000000000000000000000000000",
    "dapi0123456789abcdef0123456789abcdef",
    "dapiaabbccdd11223344556677889900abcd",
];

/// Where the binary lives in the image, and the user it runs as (Dockerfile).
const IMAGE_BINARY: &str = "/usr/local/bin/logredact";
const IMAGE_UID: i64 = 65532;

/// The admin port the probes use.
const ADMIN_PORT: i64 = 9102;

// ---------------------------------------------------------------------------
// Paths and processes

/// Files directly in `dir` whose names end with `suffix`, sorted.
fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Runs `command`, describing it as `what` in any failure.
fn output_of(command: &mut Command, what: &str) -> Result<Output, String> {
    command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))
}

// ---------------------------------------------------------------------------
// The validation tools

/// The installed validators.
struct Tools {
    /// The virtual environment's Python, which has PyYAML.
    python: PathBuf,
    kubernetes_validate: PathBuf,
    hadolint: PathBuf,
}

/// The validators, installed on first use by this test binary.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(install_tools) {
        Ok(tools) => tools,
        Err(message) => panic!(
            "the validation tools (tests/tools/requirements.txt) could not be installed \
             into the target directory; they need python3 with the venv module and access \
             to PyPI.\n{message}"
        ),
    }
}

/// Creates the virtual environment and installs the requirements into it,
/// unless it already holds exactly this requirements file.
fn install_tools() -> Result<Tools, String> {
    let requirements_path = repo_path("tests/tools/requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("tools-venv");
    let marker = venv.join(".installed-requirements.txt");

    let _lock = common::lock_file(&target.join("tools-venv.lock"), common::Wait::Yes)
        .map_err(|e| format!("cannot lock tools-venv.lock: {e}"))?;
    if fs::read_to_string(&marker).ok().as_deref() != Some(requirements.as_str()) {
        let started = Instant::now();
        if venv.exists() {
            fs::remove_dir_all(&venv)
                .map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
        }
        let created = output_of(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
        if !created.status.success() {
            return Err(format!("python3 -m venv failed\n{}", transcript(&created)));
        }
        let installed = output_of(
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--disable-pip-version-check"])
                .args(["--no-input", "--requirement"])
                .arg(&requirements_path),
            "pip install",
        )?;
        if !installed.status.success() {
            return Err(format!(
                "pip install --requirement tests/tools/requirements.txt failed\n{}",
                transcript(&installed)
            ));
        }
        fs::write(&marker, &requirements)
            .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
        eprintln!(
            "installed the validation tools into {} in {:.1} s",
            venv.display(),
            started.elapsed().as_secs_f64()
        );
    }

    let tools = Tools {
        python: venv.join("bin/python"),
        kubernetes_validate: venv.join("bin/kubernetes-validate"),
        hadolint: venv.join("bin/hadolint"),
    };
    for (tool, what) in [
        (&tools.kubernetes_validate, "kubernetes-validate"),
        (&tools.hadolint, "hadolint"),
    ] {
        let version = output_of(Command::new(tool).arg("--version"), what)?;
        if !version.status.success() {
            return Err(format!("{what} --version failed\n{}", transcript(&version)));
        }
        eprintln!(
            "{what}: {}",
            String::from_utf8_lossy(&version.stdout).trim()
        );
    }
    Ok(tools)
}

/// The documents of a YAML file, as JSON values (read by PyYAML).
fn yaml_documents(path: &Path) -> Vec<Value> {
    const SCRIPT: &str = "import json, sys, yaml\n\
                          with open(sys.argv[1], encoding='utf-8') as f:\n    \
                          json.dump([d for d in yaml.safe_load_all(f) if d is not None], sys.stdout)\n";
    let output = output_of(
        Command::new(&tools().python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(path),
        "python (PyYAML)",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{} is not valid YAML\n{}",
        path.display(),
        transcript(&output)
    );
    match serde_json::from_slice(&output.stdout) {
        Ok(Value::Array(documents)) => documents,
        other => panic!("unexpected conversion of {}: {other:?}", path.display()),
    }
}

/// A YAML text (such as a ConfigMap's value), as a JSON value.
fn yaml_text(text: &str) -> Value {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::SeqCst);
    let path = scratch(&format!("yaml-text-{call}")).join("text.yaml");
    fs::write(&path, text).unwrap();
    yaml_document(&path)
}

/// The one document of a YAML file.
fn yaml_document(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(
        documents.len(),
        1,
        "{}: one document expected",
        path.display()
    );
    documents.remove(0)
}

// ---------------------------------------------------------------------------
// Small readers

/// `--option value` pairs of a logredact command line; every option takes a
/// value, and every option is one of SPEC §9's.
fn cli_options(args: &[String]) -> Vec<(String, String)> {
    let mut options = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        assert!(
            CLI_OPTIONS.contains(&arg.as_str()),
            "'{arg}' is not an option of logredact (SPEC §9): {args:?}"
        );
        let value = rest
            .next()
            .unwrap_or_else(|| panic!("{arg} has no value: {args:?}"));
        options.push((arg.clone(), value.clone()));
    }
    for (option, value) in &options {
        match option.as_str() {
            "--input" => {
                value
                    .parse::<InputSpec>()
                    .unwrap_or_else(|e| panic!("--input {value}: {e}"));
            }
            "--output" => {
                value
                    .parse::<OutputSpec>()
                    .unwrap_or_else(|e| panic!("--output {value}: {e}"));
            }
            "--shutdown-grace" => {
                value
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("--shutdown-grace {value}: {e}"));
            }
            "--log-format" => assert!(
                value == "text" || value == "json",
                "--log-format {value}: expected text or json"
            ),
            _ => {}
        }
    }
    let outputs = options.iter().filter(|(o, _)| o == "--output").count();
    assert!(outputs <= 1, "more than one --output: {args:?}");
    options
}

/// The value of the one `option` in `options`.
fn option<'a>(options: &'a [(String, String)], option: &str) -> &'a str {
    let values: Vec<&str> = options
        .iter()
        .filter(|(o, _)| o == option)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        values.len(),
        1,
        "exactly one {option} expected: {options:?}"
    );
    values[0]
}

/// The logredact arguments of a shell command line that runs `IMAGE_BINARY`
/// (up to the first redirection).
fn logredact_args_in_shell(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| *w == IMAGE_BINARY || *w == "logredact")
        .unwrap_or_else(|| panic!("no logredact in '{command}'"));
    words[start + 1..]
        .iter()
        .take_while(|w| !w.starts_with(['<', '>', '|', '&', ';']))
        .map(|w| w.to_string())
        .collect()
}

/// Bytes of a Fluent Bit size (`4096`, `32k`, `1mb`; decimal units).
fn fluent_bit_size(text: &str) -> u64 {
    let lower = text.trim().to_ascii_lowercase();
    let digits: String = lower.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("'{text}' is not a size"));
    let factor = match &lower[digits.len()..] {
        "" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        unit => panic!("'{text}': unknown unit '{unit}'"),
    };
    number * factor
}

// ---------------------------------------------------------------------------
// Kubernetes

fn kubernetes_dir() -> PathBuf {
    repo_path("deploy/kubernetes")
}

/// The manifests (every YAML file but the kustomization).
fn kubernetes_manifests() -> Vec<PathBuf> {
    files_with_suffix(&kubernetes_dir(), ".yaml")
        .into_iter()
        .filter(|path| file_name(path) != "kustomization.yaml")
        .collect()
}

fn kubernetes_resources() -> Vec<Value> {
    kubernetes_manifests()
        .iter()
        .flat_map(|path| yaml_documents(path))
        .collect()
}

fn resources_of_kind(kind: &str) -> Vec<Value> {
    kubernetes_resources()
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn deployment(name: &str) -> Value {
    resources_of_kind("Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn array<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {value}"))
}

fn string_list(value: &Value, what: &str) -> Vec<String> {
    array(value, what)
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{what}: {v} is not a string"))
                .to_string()
        })
        .collect()
}

/// Every container of a pod spec, init containers first.
fn containers(pod: &Value) -> Vec<&Value> {
    let init = pod["initContainers"].as_array().into_iter().flatten();
    let main = pod["containers"].as_array().into_iter().flatten();
    init.chain(main).collect()
}

/// The pod's logredact container (exactly one).
fn logredact_container(pod: &Value) -> &Value {
    let found: Vec<&Value> = containers(pod)
        .into_iter()
        .filter(|c| c["image"].as_str().is_some_and(|i| i.contains("logredact")))
        .collect();
    assert_eq!(found.len(), 1, "one logredact container expected");
    found[0]
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    containers(pod)
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    array(&pod["volumes"], "volumes")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

/// The name of the volume `container` mounts at `path`.
fn volume_mounted_at<'a>(container: &'a Value, path: &str) -> &'a str {
    array(&container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == path)
        .and_then(|m| m["name"].as_str())
        .unwrap_or_else(|| panic!("{} mounts nothing at {path}", container["name"]))
}

/// The Dockerfile's `USER` and `ENTRYPOINT` lines.
fn dockerfile_user_and_entrypoint() -> (String, String) {
    let dockerfile = read(&repo_path("Dockerfile"));
    let last = |instruction: &str| {
        dockerfile
            .lines()
            .filter_map(|line| line.trim().strip_prefix(instruction))
            .next_back()
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("the Dockerfile has no {instruction}"))
    };
    (last("USER "), last("ENTRYPOINT "))
}

#[test]
fn kubernetes_manifests_pass_strict_schema_validation() {
    let tools = tools();
    let manifests = kubernetes_manifests();
    assert!(
        !manifests.is_empty(),
        "no manifests under deploy/kubernetes"
    );
    let resources: usize = manifests.iter().map(|m| yaml_documents(m).len()).sum();
    for version in KUBERNETES_VERSIONS {
        let output = output_of(
            Command::new(&tools.kubernetes_validate)
                .args(["--strict", "--kubernetes-version", version])
                .args(&manifests),
            "kubernetes-validate",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "kubernetes-validate {version}\n{}",
            transcript(&output)
        );
        // A resource whose kind or apiVersion has no schema is only a warning
        // with exit status 0: every resource must be reported as passed.
        let passed = text
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        assert_eq!(
            passed, resources,
            "kubernetes-validate {version}: not every resource was validated\n{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("WARN") || l.starts_with("ERROR")),
            "kubernetes-validate {version}\n{text}"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = yaml_document(&kubernetes_dir().join("kustomization.yaml"));
    assert_eq!(kustomization["kind"], "Kustomization");
    let listed: BTreeSet<String> = string_list(&kustomization["resources"], "resources")
        .into_iter()
        .collect();
    let present: BTreeSet<String> = kubernetes_manifests()
        .iter()
        .map(|p| file_name(p))
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml must list every manifest"
    );
}

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
fn logredact_sidecars_are_native_hardened_and_probed() {
    let (user, entrypoint) = dockerfile_user_and_entrypoint();
    assert_eq!(user, format!("{IMAGE_UID}:{IMAGE_UID}"), "Dockerfile USER");
    assert_eq!(
        entrypoint,
        format!("[\"{IMAGE_BINARY}\"]"),
        "Dockerfile ENTRYPOINT"
    );

    let config_maps = resources_of_kind("ConfigMap");
    let secrets = resources_of_kind("Secret");
    let deployments = resources_of_kind("Deployment");
    assert!(
        !deployments.is_empty(),
        "no Deployment under deploy/kubernetes"
    );
    for deployment in &deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let sidecar = logredact_container(pod);

        // A native sidecar: a restartable init container.
        let init = array(&pod["initContainers"], "initContainers");
        assert!(
            init.iter().any(|c| c == sidecar),
            "{name}: logredact must be an init container"
        );
        assert_eq!(sidecar["restartPolicy"], "Always", "{name}");

        // The image's entrypoint runs; the manifest gives arguments only.
        assert!(sidecar["command"].is_null(), "{name}: no command override");
        let args = cli_options(&string_list(&sidecar["args"], "args"));
        assert_eq!(option(&args, "--config"), "/etc/logredact/logredact.yaml");
        assert_eq!(
            option(&args, "--fingerprint-key-file"),
            "/etc/logredact/key/key"
        );

        let security = &sidecar["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "{name}");
        assert_eq!(security["runAsUser"], IMAGE_UID, "{name}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(
            security["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}"
        );
        assert_eq!(
            security["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        assert!(security["privileged"] != true, "{name}");

        let resources = &sidecar["resources"];
        assert_eq!(resources["requests"]["memory"], "16Mi", "{name}");
        assert_eq!(resources["requests"]["cpu"], "20m", "{name}");
        assert_eq!(resources["limits"]["memory"], "64Mi", "{name}");
        assert_eq!(resources["limits"]["cpu"], "500m", "{name}");

        for (probe, path) in [
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ] {
            let get = &sidecar[probe]["httpGet"];
            assert_eq!(get["path"], path, "{name}: {probe}");
            assert_eq!(get["port"], ADMIN_PORT, "{name}: {probe}");
        }
        assert!(
            array(&sidecar["ports"], "ports")
                .iter()
                .any(|p| p["containerPort"] == ADMIN_PORT),
            "{name}: the admin port is declared"
        );

        // Configuration and key: one projected volume from the ConfigMap and
        // the Secret, mounted read-only at /etc/logredact.
        let mount = array(&sidecar["volumeMounts"], "volumeMounts")
            .iter()
            .find(|m| m["mountPath"] == "/etc/logredact")
            .unwrap_or_else(|| panic!("{name}: nothing mounted at /etc/logredact"));
        assert_eq!(mount["readOnly"], true, "{name}");
        let sources = array(
            &volume(pod, mount["name"].as_str().unwrap())["projected"]["sources"],
            "projected sources",
        );
        let config_map = sources
            .iter()
            .find_map(|s| s.get("configMap"))
            .unwrap_or_else(|| panic!("{name}: no ConfigMap in the projected volume"));
        assert!(
            config_maps
                .iter()
                .any(|c| c["metadata"]["name"] == config_map["name"]
                    && !c["data"]["logredact.yaml"].is_null()),
            "{name}: the ConfigMap {} with logredact.yaml is in the manifests",
            config_map["name"]
        );
        assert!(
            array(&config_map["items"], "items")
                .iter()
                .any(|i| i["key"] == "logredact.yaml" && i["path"] == "logredact.yaml"),
            "{name}: logredact.yaml is projected to /etc/logredact/logredact.yaml"
        );
        // Every pack that logredact.yaml includes is projected where the
        // include points (relative to /etc/logredact).
        let projected_config = config_maps
            .iter()
            .find(|c| c["metadata"]["name"] == config_map["name"])
            .unwrap();
        let configuration = yaml_text(projected_config["data"]["logredact.yaml"].as_str().unwrap());
        for pack in configuration["include"].as_array().into_iter().flatten() {
            assert!(
                array(&config_map["items"], "items")
                    .iter()
                    .any(|i| &i["path"] == pack
                        && !projected_config["data"][i["key"].as_str().unwrap()].is_null()),
                "{name}: the included {pack} is projected to /etc/logredact/{pack}"
            );
        }
        let secret = sources
            .iter()
            .find_map(|s| s.get("secret"))
            .unwrap_or_else(|| panic!("{name}: no Secret in the projected volume"));
        assert!(
            secrets
                .iter()
                .any(|s| s["metadata"]["name"] == secret["name"] && !s["data"]["key"].is_null()),
            "{name}: the Secret {} with a key is in the manifests",
            secret["name"]
        );
        assert!(
            array(&secret["items"], "items")
                .iter()
                .any(|i| i["key"] == "key" && i["path"] == "key/key"),
            "{name}: the key is projected to /etc/logredact/key/key"
        );
        assert!(
            containers(pod)
                .into_iter()
                .filter(|c| *c != sidecar)
                .all(|c| c["volumeMounts"]
                    .as_array()
                    .is_none_or(|mounts| { mounts.iter().all(|m| m["name"] != mount["name"]) })),
            "{name}: only logredact mounts the key"
        );
    }
}

#[test]
fn shared_volume_sidecar_follows_the_application_log() {
    let deployment = deployment("demo-app-shared-volume");
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = logredact_container(pod);
    let args = cli_options(&string_list(&sidecar["args"], "args"));
    assert_eq!(option(&args, "--input"), "follow:/var/log/app/app.log");
    assert_eq!(option(&args, "--state-dir"), "/var/log/app/.logredact");
    assert_eq!(option(&args, "--output"), "-");

    // The application writes the followed file on a volume both mount.
    let app = container(pod, "app");
    let shared = volume_mounted_at(app, "/var/log/app");
    assert_eq!(volume_mounted_at(sidecar, "/var/log/app"), shared);
    assert!(volume(pod, shared)["emptyDir"].is_object());
    assert!(
        string_list(&app["args"], "args")
            .concat()
            .contains(">> /var/log/app/app.log")
    );
}

#[test]
fn tcp_sidecar_proxies_each_connection_to_the_collector() {
    let deployment = deployment("demo-app-tcp");
    let pod = &deployment["spec"]["template"]["spec"];
    let args = cli_options(&string_list(&logredact_container(pod)["args"], "args"));
    assert_eq!(option(&args, "--input"), "tcp://127.0.0.1:5170");
    assert_eq!(
        option(&args, "--output"),
        "tcp://log-collector.logging.svc.cluster.local:5170"
    );
    let app = container(pod, "app");
    assert!(
        string_list(&app["args"], "args")
            .concat()
            .contains("nc 127.0.0.1 5170")
    );
}

#[test]
fn configmap_configuration_is_accepted_by_logredact() {
    let config_map = resources_of_kind("ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "logredact-config")
        .expect("the logredact-config ConfigMap");
    let text = config_map["data"]["logredact.yaml"].as_str().unwrap();
    let dir = scratch("configmap");
    let path = dir.join("logredact.yaml");
    fs::write(&path, text).unwrap();
    // The packs it includes are keys of the ConfigMap too (the mount hides
    // the image's rules/ folder), verbatim copies of the repository's packs.
    let config = yaml_document(&path);
    let included = string_list(&config["include"], "include");
    assert!(
        included.iter().any(|p| p == "rules/json-escaped.yaml"),
        "the ConfigMap's configuration includes the JSON-escape pack"
    );
    for pack in &included {
        let key = pack
            .strip_prefix("rules/")
            .unwrap_or_else(|| panic!("{pack}: packs live in rules/"));
        let copy = config_map["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("the ConfigMap has no key {key} for {pack}"));
        assert_eq!(
            copy,
            read(&repo_path(&format!("config/{pack}"))),
            "the ConfigMap's {key} differs from config/{pack}"
        );
        fs::create_dir_all(dir.join("rules")).unwrap();
        fs::write(dir.join(pack), copy).unwrap();
    }

    let output = output_of(
        Command::new(env!("CARGO_BIN_EXE_logredact"))
            .arg("check-config")
            .arg(&path),
        "logredact check-config",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "logredact check-config refuses the ConfigMap's configuration\n{}",
        transcript(&output)
    );
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(listed.contains("databricks-pat "), "{listed}");
    assert!(listed.contains("databricks-pat-json-tab "), "{listed}");

    // The same rule as the shipped default.
    let default = yaml_document(&repo_path("config/logredact.yaml"));
    assert_eq!(config["rules"], default["rules"]);

    // Probes come from the node: the admin endpoint must listen on the pod IP,
    // on the port the probes use.
    assert_eq!(config["admin"]["listen"], format!("0.0.0.0:{ADMIN_PORT}"));

    // Memory plan: about 16 MiB per busy process plus about 0.3 MiB per TCP
    // connection must fit in the 64Mi limit.
    let connections = config["limits"]["max_connections"].as_f64().unwrap();
    assert!(
        16.0 + 0.3 * connections <= 64.0,
        "max_connections {connections}"
    );
}

#[test]
fn secret_holds_an_obvious_placeholder_key() {
    let secret = resources_of_kind("Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "logredact-fingerprint-key")
        .expect("the logredact-fingerprint-key Secret");
    let key = base64_decode(secret["data"]["key"].as_str().unwrap());
    assert!(key.len() >= 16, "a fingerprint key has at least 16 bytes");
    assert!(
        String::from_utf8_lossy(&key).starts_with("REPLACE-ME"),
        "the committed key must be a marked placeholder"
    );
    assert!(!token_regex().is_match(&key));
}

// ---------------------------------------------------------------------------
// Fluent Bit

/// One section of a Fluent Bit configuration: `service`, `input` or
/// `output`, with its properties (names lower-cased, booleans normalised).
type Section = (String, BTreeMap<String, String>);

fn fluent_bit_dir() -> PathBuf {
    repo_path("deploy/fluent-bit")
}

/// Fluent Bit's booleans as one spelling; other values unchanged.
fn normalise_value(value: &str) -> String {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => "true".to_string(),
        "off" | "false" | "no" => "false".to_string(),
        _ => value.to_string(),
    }
}

/// Sections in the order service, inputs, outputs (each in file order).
fn in_canonical_order(mut sections: Vec<Section>) -> Vec<Section> {
    let rank = |kind: &str| {
        ["service", "input", "output"]
            .iter()
            .position(|k| *k == kind)
    };
    sections.sort_by_key(|(kind, _)| rank(kind));
    sections
}

/// A classic-format configuration: `[SECTION]` headers, `Key Value` lines,
/// `#` comments.
fn classic_sections(path: &Path) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in read(path).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((header.to_ascii_lowercase(), BTreeMap::new()));
            continue;
        }
        let (key, value) = line
            .split_once(char::is_whitespace)
            .unwrap_or_else(|| panic!("{}: '{line}' has no value", path.display()));
        let (_, properties) = sections
            .last_mut()
            .unwrap_or_else(|| panic!("{}: '{line}' outside a section", path.display()));
        let previous = properties.insert(key.to_ascii_lowercase(), normalise_value(value.trim()));
        assert!(previous.is_none(), "{}: {key} set twice", path.display());
    }
    in_canonical_order(sections)
}

/// A YAML-format configuration: `service` and `pipeline.inputs/outputs`.
fn yaml_sections(path: &Path) -> Vec<Section> {
    let document = yaml_document(path);
    let properties = |map: &Value| -> BTreeMap<String, String> {
        map.as_object()
            .unwrap_or_else(|| panic!("{}: {map} is not a map", path.display()))
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("{}: {key}: unexpected {other}", path.display()),
                };
                (key.to_ascii_lowercase(), normalise_value(&text))
            })
            .collect()
    };
    let mut sections = vec![("service".to_string(), properties(&document["service"]))];
    for (list, kind) in [("inputs", "input"), ("outputs", "output")] {
        for plugin in array(&document["pipeline"][list], list) {
            sections.push((kind.to_string(), properties(plugin)));
        }
    }
    sections
}

/// The configuration `stem` (`.conf` and `.yaml`), checked to be the same.
fn fluent_bit_config(stem: &str) -> Vec<Section> {
    let classic = classic_sections(&fluent_bit_dir().join(format!("{stem}.conf")));
    let yaml = yaml_sections(&fluent_bit_dir().join(format!("{stem}.yaml")));
    assert_eq!(
        classic, yaml,
        "{stem}.conf and {stem}.yaml must say the same"
    );
    classic
}

/// The one plugin named `name` of `kind`.
fn plugin<'a>(sections: &'a [Section], kind: &str, name: &str) -> &'a BTreeMap<String, String> {
    let found: Vec<&BTreeMap<String, String>> = sections
        .iter()
        .filter(|(k, p)| k == kind && p.get("name").map(String::as_str) == Some(name))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} expected");
    found[0]
}

fn property<'a>(properties: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    properties
        .get(key)
        .unwrap_or_else(|| panic!("{key} is not set: {properties:?}"))
}

#[test]
fn fluent_bit_variants_cover_both_formats() {
    let stems = |suffix: &str| -> BTreeSet<String> {
        files_with_suffix(&fluent_bit_dir(), suffix)
            .iter()
            .map(|p| file_name(p).trim_end_matches(suffix).to_string())
            .collect()
    };
    assert_eq!(
        stems(".conf"),
        stems(".yaml"),
        "every configuration in both formats"
    );
    for stem in stems(".conf") {
        fluent_bit_config(&stem);
    }
}

#[test]
fn fluent_bit_exec_input_runs_logredact_as_a_long_lived_oneshot() {
    let sections = fluent_bit_config("exec-oneshot");
    let exec = plugin(&sections, "input", "exec");
    assert_eq!(property(exec, "oneshot"), "true");
    // A long-running Oneshot command's records arrive promptly only threaded.
    assert_eq!(property(exec, "threaded"), "true");
    assert!(
        fluent_bit_size(property(exec, "buf_size")) > 4096,
        "Buf_Size must be larger than the 4096-byte default"
    );
    assert_eq!(property(exec, "exit_after_oneshot"), "true");

    let command = property(exec, "command");
    assert!(
        command.starts_with(&format!("exec {IMAGE_BINARY} ")),
        "the shell is replaced by logredact: {command}"
    );
    assert!(
        command.contains("</dev/null"),
        "no standard input: {command}"
    );
    let args = cli_options(&logredact_args_in_shell(command));
    assert!(
        option(&args, "--input").starts_with("follow:"),
        "the exec input gives no stdin: logredact must follow a file"
    );
    assert!(!option(&args, "--state-dir").is_empty());
    assert_eq!(option(&args, "--output"), "-");

    let output = plugin(&sections, "output", "stdout");
    assert_eq!(property(output, "match"), property(exec, "tag"));
}

#[test]
fn fluent_bit_tcp_hop_ports_and_routes_are_consistent() {
    let sections = fluent_bit_config("tcp-hop");
    let to_logredact = plugin(&sections, "output", "tcp");
    assert_eq!(property(to_logredact, "format"), "json_lines");
    assert!(to_logredact.contains_key("json_date_key"));
    let from_logredact = plugin(&sections, "input", "tcp");
    assert_eq!(property(from_logredact, "format"), "json");
    assert_eq!(property(from_logredact, "listen"), "127.0.0.1");

    // The raw records go only to logredact; the redacted ones come back under
    // another tag (no loop, no raw record past the hop).
    let raw = property(plugin(&sections, "input", "tail"), "tag");
    assert_eq!(property(to_logredact, "match"), raw);
    let redacted = property(from_logredact, "tag");
    assert_ne!(raw, redacted);
    assert_eq!(
        property(plugin(&sections, "output", "stdout"), "match"),
        redacted
    );

    // The logredact command line in each file's header connects the two.
    let expected_input = format!(
        "tcp://{}:{}",
        property(to_logredact, "host"),
        property(to_logredact, "port")
    );
    let expected_output = format!("tcp://127.0.0.1:{}", property(from_logredact, "port"));
    for file in ["tcp-hop.conf", "tcp-hop.yaml"] {
        let text = read(&fluent_bit_dir().join(file));
        // The command line in the header comment, joined across `\`.
        let mut line = String::new();
        for comment in text
            .lines()
            .map_while(|l| l.strip_prefix('#'))
            .map(str::trim)
            .skip_while(|c| !c.starts_with("logredact --"))
        {
            match comment.strip_suffix('\\') {
                Some(head) => line.push_str(head),
                None => {
                    line.push_str(comment);
                    break;
                }
            }
        }
        assert!(!line.is_empty(), "{file}: no logredact command line");
        let args = cli_options(&logredact_args_in_shell(&line));
        assert_eq!(option(&args, "--input"), expected_input, "{file}");
        assert_eq!(option(&args, "--output"), expected_output, "{file}");
        // JSON lines: the configuration includes the JSON-escape pack. The
        // path is the installed config/ folder (the image's /etc/logredact).
        let config = option(&args, "--config");
        let installed = config
            .strip_prefix("/etc/logredact/")
            .unwrap_or_else(|| panic!("{file}: --config {config} is not in /etc/logredact"));
        let config = yaml_document(&repo_path(&format!("config/{installed}")));
        assert!(
            string_list(&config["include"], "include")
                .iter()
                .any(|p| p == "rules/json-escaped.yaml"),
            "{file}: the configuration includes rules/json-escaped.yaml"
        );
    }
}

// ---------------------------------------------------------------------------
// Fluentd

#[test]
fn fluentd_exec_filter_exchanges_json_with_a_respawned_logredact() {
    let parameters = fluentd_parameters(&read(&repo_path("deploy/fluentd/fluent.conf")));
    let value = |section: &str, key: &str| -> &str {
        parameters
            .iter()
            .find(|(p, k, _)| p == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{section}> has no {key}"))
    };
    let (filter, _, _) = parameters
        .iter()
        .find(|(_, k, v)| k == "@type" && v == "exec_filter")
        .expect("an exec_filter output");
    let filter = filter.clone();

    let command = value(&filter, "command");
    let args = cli_options(&logredact_args_in_shell(command));
    assert!(
        ["-1", "inf"].contains(&value(&filter, "child_respawn")),
        "child_respawn restarts logredact forever"
    );
    // JSON in and out: the configuration includes the JSON-escape pack (the
    // path is the installed config/ folder, the image's /etc/logredact).
    let config = option(&args, "--config");
    let installed = config
        .strip_prefix("/etc/logredact/")
        .unwrap_or_else(|| panic!("--config {config} is not in /etc/logredact"));
    let config = yaml_document(&repo_path(&format!("config/{installed}")));
    assert!(
        string_list(&config["include"], "include")
            .iter()
            .any(|p| p == "rules/json-escaped.yaml"),
        "the exec_filter's configuration includes rules/json-escaped.yaml"
    );
    assert_eq!(value(&format!("{filter}/format"), "@type"), "json");
    // The child's output is read line by line: `@type json` here would read
    // it through Yajl in 8 KiB blocks (see the comment in fluent.conf); each
    // line is parsed as JSON by a parser filter on the tag instead.
    assert_eq!(value(&format!("{filter}/parse"), "@type"), "none");
    let tag = value(&filter, "tag");
    let json_step = format!("filter {tag}");
    assert_eq!(value(&json_step, "@type"), "parser");
    assert_eq!(value(&json_step, "key_name"), "message");
    assert_eq!(value(&format!("{json_step}/parse"), "@type"), "json");
    assert!(
        parameters
            .iter()
            .any(|(p, k, _)| p == &format!("match {tag}") && k == "@type"),
        "the redacted records (tag {tag}) are routed somewhere"
    );
}

// ---------------------------------------------------------------------------
// The YAML reader of the tests that run the deployments

#[test]
fn the_deployment_tests_yaml_reader_reads_like_pyyaml() {
    // tests/integrations.rs reads the manifests and configurations with a
    // small YAML reader (deploy_support); it must see what PyYAML sees.
    let mut files = kubernetes_manifests();
    files.push(kubernetes_dir().join("kustomization.yaml"));
    files.push(repo_path("config/logredact-json.yaml"));
    for path in files {
        assert_eq!(
            deploy_support::yaml_documents(&read(&path)),
            yaml_documents(&path),
            "{}",
            path.display()
        );
    }
    for config_map in resources_of_kind("ConfigMap") {
        let text = config_map["data"]["logredact.yaml"].as_str().unwrap();
        assert_eq!(
            deploy_support::yaml_documents(text),
            vec![yaml_text(text)],
            "the ConfigMap's logredact.yaml"
        );
    }
}

// ---------------------------------------------------------------------------
// Every deployment file

#[test]
fn deployment_files_open_with_a_comment_and_hold_no_real_looking_token() {
    let mut files = Vec::new();
    let mut pending = vec![repo_path("deploy"), repo_path("tests/tools")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "deployment files: {files:?}");
    let tokens = token_regex();
    for path in files {
        let bytes = fs::read(&path).unwrap();
        assert!(
            bytes.starts_with(b"#"),
            "{} must open with a comment saying what it is for",
            path.display()
        );
        for found in tokens.find_iter(&bytes) {
            let token = String::from_utf8_lossy(found.as_bytes());
            assert!(
                PLACEHOLDER_TOKENS.contains(&token.as_ref()),
                "{}: a token-shaped string that is not a documentation placeholder",
                path.display()
            );
        }
    }
}
