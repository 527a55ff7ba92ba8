//! The Kubernetes objects under `deploy/kubernetes`, and the parts of a pod
//! spec the checks look into; and what the node-level DaemonSet must be
//! beyond the hardening it shares with the sidecars (its checks, shown to
//! fail on broken copies of the manifest, and the DaemonSet played end to
//! end on a node's log layout).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use logredact::config::{Config, InputSpec};
use serde_json::Value;

use crate::common::{
    Pki, Running, TlsCollector, TokenGen, append, binary, free_port, read, reference_redaction,
    repo_path, scratch,
};
use crate::invocation::{cli_options, load_config, option, remap, set_option};
use crate::yaml;

pub fn kubernetes_dir() -> PathBuf {
    repo_path("deploy/kubernetes")
}

/// Files directly in `dir` whose names end with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

pub fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The manifests (every YAML file but the kustomization).
pub fn manifests() -> Vec<PathBuf> {
    files_with_suffix(&kubernetes_dir(), ".yaml")
        .into_iter()
        .filter(|path| file_name(path) != "kustomization.yaml")
        .collect()
}

/// Every object of every manifest.
pub fn resources() -> Vec<Value> {
    manifests()
        .iter()
        .flat_map(|path| yaml::file_documents(path))
        .collect()
}

pub fn resources_of_kind(kind: &str) -> Vec<Value> {
    resources()
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// The one object of `kind` named `name`.
pub fn resource(kind: &str, name: &str) -> Value {
    resources_of_kind(kind)
        .into_iter()
        .find(|r| r["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

pub fn array<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {value}"))
}

pub fn string_list(value: &Value, what: &str) -> Vec<String> {
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
pub fn containers(pod: &Value) -> Vec<&Value> {
    let init = pod["initContainers"].as_array().into_iter().flatten();
    let main = pod["containers"].as_array().into_iter().flatten();
    init.chain(main).collect()
}

/// The pod's logredact container (exactly one).
pub fn logredact_container(pod: &Value) -> &Value {
    let found: Vec<&Value> = containers(pod)
        .into_iter()
        .filter(|c| c["image"].as_str().is_some_and(|i| i.contains("logredact")))
        .collect();
    assert_eq!(found.len(), 1, "one logredact container expected");
    found[0]
}

pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    containers(pod)
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The item named `name` of the list `list` of a pod spec (`volumes`,
/// `containers`, ...).
pub fn named<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    array(&pod[list], list)
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

pub fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    named(pod, "volumes", name)
}

/// The name of the volume `container` mounts at `path`.
pub fn volume_mounted_at<'a>(container: &'a Value, path: &str) -> &'a str {
    array(&container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == path)
        .and_then(|m| m["name"].as_str())
        .unwrap_or_else(|| panic!("{} mounts nothing at {path}", container["name"]))
}

/// A file mode as Kubernetes reads it from a manifest: a number, where a
/// plain `0440` is octal (YAML 1.1; serde_yaml leaves it a string).
pub fn file_mode(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        Value::String(s) if s.len() > 1 && s.starts_with('0') => {
            Some(u32::from_str_radix(s, 8).unwrap_or_else(|e| panic!("mode {s}: {e}")))
        }
        Value::Null => None,
        other => panic!("{other} is not a file mode"),
    }
}

/// Standard base64, as in a Secret's `data`.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
    {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("'{}' is not base64", char::from(c)));
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    bytes
}

// ---------------------------------------------------------------------------
// The node-level DaemonSet (daemonset.yaml)

/// The memory plan of a node (daemonset.yaml, from measurements): a base,
/// plus about what one file being written takes for every file followed at
/// once (`limits.max_files`).
const NODE_BASE_MIB: f64 = 16.0;
const NODE_MIB_PER_FILE: f64 = 0.15;

/// Where the kubelet keeps every container's log on a node.
const POD_LOGS: &str = "/var/log/pods";

/// Files of the kubelet's layout under [`POD_LOGS`]
/// (`<namespace>_<pod>_<uid>/<container>/<restart>.log`): the current log
/// of a container, and of its previous run.
const CONTAINER_LOGS: [&str; 2] = [
    "/var/log/pods/shop_web-7d4b9c6f5-x2x9k_6b1f0e4c-2d1a-4f7e-9a53-0c2b7d9e1f10/app/0.log",
    "/var/log/pods/shop_web-7d4b9c6f5-x2x9k_6b1f0e4c-2d1a-4f7e-9a53-0c2b7d9e1f10/app/1.log",
];

/// Files of the same layout that are no stream of their own: a generation
/// the kubelet rotated (read as part of its file) and a compressed one.
const ROTATED_LOGS: [&str; 2] = [
    "/var/log/pods/shop_web-7d4b9c6f5-x2x9k_6b1f0e4c-2d1a-4f7e-9a53-0c2b7d9e1f10/app/0.log.20261130-120000",
    "/var/log/pods/shop_web-7d4b9c6f5-x2x9k_6b1f0e4c-2d1a-4f7e-9a53-0c2b7d9e1f10/app/0.log.20261130-110000.gz",
];

/// The objects of daemonset.yaml.
pub fn daemon_set_objects() -> Vec<Value> {
    yaml::file_documents(&kubernetes_dir().join("daemonset.yaml"))
}

/// The one DaemonSet among `objects`.
pub fn the_daemon_set(objects: &[Value]) -> &Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "DaemonSet")
        .collect();
    assert_eq!(found.len(), 1, "one DaemonSet expected");
    found[0]
}

/// Lays out under `local` what Kubernetes puts in the projected `volume`
/// from the manifests' ConfigMaps and Secrets, with its `defaultMode`.
pub fn lay_out_projected(volume: &Value, local: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let projected = &volume["projected"];
    assert!(projected.is_object(), "not a projected volume: {volume}");
    let mode = file_mode(&projected["defaultMode"]).unwrap_or(0o644);
    for source in array(&projected["sources"], "projected sources") {
        let (kind, reference) = if source["configMap"].is_object() {
            ("ConfigMap", &source["configMap"])
        } else {
            ("Secret", &source["secret"])
        };
        let object = resource(kind, reference["name"].as_str().unwrap());
        for item in array(&reference["items"], "items") {
            let data = object["data"][item["key"].as_str().unwrap()]
                .as_str()
                .unwrap_or_else(|| panic!("the {kind} has no key {}", item["key"]));
            let bytes = match kind {
                "Secret" => base64_decode(data),
                _ => data.as_bytes().to_vec(),
            };
            let path = local.join(item["path"].as_str().unwrap());
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, bytes).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// The configuration the DaemonSet's logredact reads: the volume mounted
/// where `--config` points laid out under `dir`, read by logredact.
pub fn daemon_set_config(objects: &[Value], dir: &Path) -> Config {
    let pod = &the_daemon_set(objects)["spec"]["template"]["spec"];
    let logredact = logredact_container(pod);
    let args = cli_options(&string_list(&logredact["args"], "args"));
    let config = option(&args, "--config");
    let mount = mount_holding(logredact, config)
        .unwrap_or_else(|| panic!("--config {config} is on no volume"));
    let mount_path = mount["mountPath"].as_str().unwrap();
    lay_out_projected(volume(pod, mount["name"].as_str().unwrap()), dir);
    let relative = Path::new(config).strip_prefix(mount_path).unwrap();
    load_config(&dir.join(relative))
}

/// The mount of `container` that holds `path`: the one with the longest
/// mount path that `path` is at or under.
fn mount_holding<'a>(container: &'a Value, path: &str) -> Option<&'a Value> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|at| Path::new(path).starts_with(at))
        })
        .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
}

/// Whether `container` of `pod` finds a file at `path` that a projected
/// volume puts there (an item of one of its ConfigMap or Secret sources).
pub fn projects_file(pod: &Value, container: &Value, path: &str) -> bool {
    let Some(mount) = mount_holding(container, path) else {
        return false;
    };
    let Some(volume) = find_volume(pod, &mount["name"]) else {
        return false;
    };
    let relative = Path::new(path)
        .strip_prefix(mount["mountPath"].as_str().unwrap_or_default())
        .unwrap_or(Path::new(path));
    let sources = volume["projected"]["sources"]
        .as_array()
        .into_iter()
        .flatten();
    sources
        .flat_map(|source| [&source["configMap"], &source["secret"]])
        .flat_map(|reference| reference["items"].as_array().into_iter().flatten())
        .any(|item| item["path"].as_str().map(Path::new) == Some(relative))
}

/// Replaces a file laid out from a projected volume (read-only, as the
/// kubelet makes them) with `bytes`, keeping its mode.
pub fn replace_laid_out(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).unwrap().permissions().mode();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The volume named `name` of `pod`, if there is one.
fn find_volume<'a>(pod: &'a Value, name: &Value) -> Option<&'a Value> {
    pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| &v["name"] == name)
}

/// The directory a pattern starts in: its part before the first wildcard,
/// up to the last `/`.
fn pattern_dir(pattern: &str) -> &str {
    let literal = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
    literal.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// A memory quantity in MiB (`Ki`, `Mi` and `Gi` suffixes, or bytes).
fn mebibytes(quantity: &Value) -> Option<f64> {
    let text = match quantity {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (number, scale) = if let Some(n) = text.strip_suffix("Ki") {
        (n, 1.0 / 1024.0)
    } else if let Some(n) = text.strip_suffix("Mi") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("Gi") {
        (n, 1024.0)
    } else {
        (text.as_str(), 1.0 / (1024.0 * 1024.0))
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// What is wrong with the node-level deployment in `objects` (the documents
/// of daemonset.yaml), for logredact with `config`, beyond the hardening it
/// shares with the sidecars (checked in `manifests`): the node's logs
/// followed through a read-only hostPath, the checkpoints on a read-write
/// hostPath, the output over TLS with its CA bundle projected where the
/// configuration names it, nothing exposed on the node, the probes on
/// the admin endpoint, every node, no API token, one pod per node during an
/// update, root with no capability, a shutdown within the pod's grace
/// period, and memory for `limits.max_files` files.
pub fn daemon_set_problems(objects: &[Value], config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };
    let daemon_set = the_daemon_set(objects);
    let pod = &daemon_set["spec"]["template"]["spec"];
    let logredact = logredact_container(pod);
    let args = cli_options(&string_list(&logredact["args"], "args"));
    let value = |name: &str| {
        args.iter()
            .find(|(o, _)| o == name)
            .map(|(_, v)| v.as_str())
    };

    // The input: every container's log, under the node's /var/log/pods
    // mounted read-only.
    let input = value("--input").unwrap_or_default();
    match input.strip_prefix("follow:") {
        None => check(false, format!("--input {input}: not a follow: input")),
        Some(pattern) => {
            check(
                matches!(input.parse::<InputSpec>(), Ok(InputSpec::FollowGlob(..))),
                format!("--input {input}: not a pattern"),
            );
            // As logredact matches: `*` within one path component.
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher());
            match glob {
                Err(e) => check(false, format!("--input {input}: {e}")),
                Ok(glob) => {
                    for path in CONTAINER_LOGS {
                        check(
                            glob.is_match(path),
                            format!("--input {input}: a container's log {path} is not followed"),
                        );
                    }
                    for path in ROTATED_LOGS {
                        check(
                            !glob.is_match(path),
                            format!("--input {input}: the rotated {path} is followed as a stream"),
                        );
                    }
                }
            }
            let dir = pattern_dir(pattern);
            match mount_holding(logredact, dir) {
                None => check(false, format!("--input {input}: {dir} is on no volume")),
                Some(mount) => {
                    let host = find_volume(pod, &mount["name"]).map(|v| &v["hostPath"]);
                    check(
                        mount["mountPath"] == POD_LOGS
                            && host.is_some_and(|h| h["path"] == POD_LOGS),
                        format!(
                            "--input {input}: the logs must be the node's {POD_LOGS}, \
                             a hostPath volume mounted at the same path"
                        ),
                    );
                    check(
                        mount["readOnly"] == true,
                        format!("{POD_LOGS} must be mounted readOnly: true"),
                    );
                }
            }
        }
    }

    // The checkpoints: a hostPath state directory, mounted read-write, is
    // the --state-dir.
    let state = value("--state-dir").unwrap_or_default();
    match mount_holding(logredact, state) {
        None => check(false, format!("--state-dir {state:?} is on no volume")),
        Some(mount) => {
            let host = find_volume(pod, &mount["name"]).map(|v| &v["hostPath"]);
            check(
                mount["mountPath"] == state,
                format!("--state-dir {state} must be the state volume's mount path"),
            );
            check(
                host.is_some_and(|h| h["type"] == "DirectoryOrCreate"),
                format!(
                    "--state-dir {state}: a hostPath volume of type DirectoryOrCreate, to survive the pod"
                ),
            );
            check(
                host.is_some_and(|h| {
                    h["path"]
                        .as_str()
                        .is_some_and(|p| !Path::new(p).starts_with(POD_LOGS))
                }),
                format!("--state-dir {state}: not among the node's logs"),
            );
            check(
                mount["readOnly"] != true,
                format!("--state-dir {state}: the state volume must be mounted read-write"),
            );
        }
    }

    // The output: over TLS to the aggregator, across the cluster network,
    // trusting the CA bundle the configuration names, which is mounted.
    let output = value("--output").unwrap_or("-");
    check(
        output.starts_with("tls://"),
        format!("--output {output}: not tls://HOST:PORT, across the cluster network"),
    );
    match &config.tls.client {
        None => check(false, "tls.client is not set in the configuration".into()),
        Some(client) => {
            let ca = client.ca.to_str().unwrap_or_default();
            check(
                projects_file(pod, logredact, ca),
                format!("tls.client.ca {ca}: no projected volume puts the CA bundle there"),
            );
        }
    }

    // The shutdown ends within the pod's grace period.
    let shutdown: u64 = value("--shutdown-grace").map_or(0, |v| v.parse().unwrap());
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    check(
        shutdown > 0 && grace >= shutdown + 10,
        format!(
            "--shutdown-grace {shutdown} must be given and leave at least 10 s of \
             terminationGracePeriodSeconds {grace}"
        ),
    );

    // Nothing on the node's network.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        check(pod[field] != true, format!("{field}: true"));
    }
    for container in containers(pod) {
        for port in container["ports"].as_array().into_iter().flatten() {
            check(
                port["hostPort"].is_null() && port["hostIP"].is_null(),
                format!("{}: a hostPort {port}", container["name"]),
            );
        }
    }

    // The probes ask the admin endpoint, on its port, over plain HTTP.
    let admin_port: Option<u64> = config
        .admin
        .as_deref()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok());
    check(
        admin_port.is_some(),
        "the configuration has no admin endpoint".into(),
    );
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &logredact[probe]["httpGet"];
        check(
            get["path"] == path
                && get["port"].as_u64() == admin_port
                && get["host"].is_null()
                && (get["scheme"].is_null() || get["scheme"] == "HTTP"),
            format!("{probe} must GET {path} on the admin endpoint (port {admin_port:?}): {get}"),
        );
    }
    check(
        logredact["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["containerPort"].as_u64() == admin_port),
        "the admin port is declared".into(),
    );

    // Every node, control-plane and tainted ones included.
    check(
        pod["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null() && t["effect"].is_null()),
        "no toleration of every taint (operator: Exists, no key, no effect)".into(),
    );

    // An identity of its own, and no API token.
    let account = &pod["serviceAccountName"];
    check(
        objects.iter().any(|o| {
            o["kind"] == "ServiceAccount"
                && o["metadata"]["name"] == *account
                && o["automountServiceAccountToken"] == false
        }),
        format!(
            "serviceAccountName {account}: a ServiceAccount here, with automountServiceAccountToken: false"
        ),
    );
    check(
        pod["automountServiceAccountToken"] == false,
        "the pod mounts an API token".into(),
    );

    // Updates: a node at a time, never two logredacts on a node.
    let strategy = &daemon_set["spec"]["updateStrategy"];
    let rolling = &strategy["rollingUpdate"];
    check(
        strategy["type"] == "RollingUpdate" && !rolling["maxUnavailable"].is_null(),
        format!("updateStrategy: RollingUpdate with maxUnavailable: {strategy}"),
    );
    check(
        rolling["maxSurge"].is_null() || rolling["maxSurge"] == 0 || rolling["maxSurge"] == "0%",
        format!(
            "maxSurge {}: two pods on a node would forward every line twice",
            rolling["maxSurge"]
        ),
    );

    // Root only to read root's files: no capability, nothing writable but
    // the state directory.
    let security = &logredact["securityContext"];
    if security["runAsUser"] == 0 {
        check(
            security["runAsNonRoot"] != true,
            "runAsUser 0 with runAsNonRoot: true never starts".into(),
        );
        check(
            security["capabilities"]["drop"] == serde_json::json!(["ALL"])
                && security["capabilities"]["add"]
                    .as_array()
                    .is_none_or(|a| a.is_empty())
                && security["readOnlyRootFilesystem"] == true
                && security["allowPrivilegeEscalation"] == false
                && security["privileged"] != true,
            format!(
                "root must drop every capability, add none and write nothing but its state: {security}"
            ),
        );
    }

    // Memory for every file followed at once.
    let resources = &logredact["resources"];
    let limit = mebibytes(&resources["limits"]["memory"]);
    let request = mebibytes(&resources["requests"]["memory"]);
    let files = config.limits.max_files as f64;
    let needed = NODE_BASE_MIB + NODE_MIB_PER_FILE * files;
    check(
        limit.is_some_and(|l| l >= needed),
        format!("memory limit {limit:?} MiB: {needed} MiB needed for limits.max_files {files}"),
    );
    check(
        request.is_some_and(|r| limit.is_some_and(|l| r <= l)),
        format!("memory request {request:?} MiB above the limit {limit:?} MiB"),
    );
    check(
        !resources["limits"]["cpu"].is_null() && !resources["requests"]["cpu"].is_null(),
        "CPU request and limit".into(),
    );
    problems
}

/// Each check of `daemon_set_problems` fails on a manifest that breaks it:
/// the manifest's text with one edit, which must apply exactly once. The
/// manifest itself passes (here, and in `manifests`, beside the hardening it
/// shares with the sidecars).
#[test]
fn daemon_set_checks_fail_on_a_broken_manifest() {
    let text = read(&kubernetes_dir().join("daemonset.yaml"));
    let objects = daemon_set_objects();
    let config = daemon_set_config(&objects, &scratch("daemonset-mutations"));
    let problems = daemon_set_problems(&objects, &config);
    assert!(problems.is_empty(), "daemonset.yaml: {problems:?}");
    let logs_mount = "mountPath: /var/log/pods\n              readOnly: true";
    let state_mount = "mountPath: /var/lib/logredact\n";
    let mutations: &[(&str, &str, &str)] = &[
        (logs_mount, "mountPath: /var/log/pods", "readOnly: true"),
        (
            logs_mount,
            "mountPath: /var/log/pods\n              readOnly: false",
            "readOnly: true",
        ),
        (
            "hostPath:\n            path: /var/log/pods\n            type: Directory",
            "emptyDir: {}",
            "the node's /var/log/pods",
        ),
        (
            "hostPath:\n            path: /var/log/pods",
            "hostPath:\n            path: /var/log/containers",
            "the node's /var/log/pods",
        ),
        (
            "- follow:/var/log/pods/*/*/*.log",
            "- follow:/var/log/pods/x/app/0.log",
            "not a pattern",
        ),
        (
            "- follow:/var/log/pods/*/*/*.log",
            "- follow:/var/log/pods/*/*/*",
            "is followed as a stream",
        ),
        (
            "- follow:/var/log/pods/*/*/*.log",
            "- follow:/var/log/pods/*.log",
            "is not followed",
        ),
        (
            "- follow:/var/log/pods/*/*/*.log",
            "- follow:/var/log/app/*.log",
            "is on no volume",
        ),
        (
            "- follow:/var/log/pods/*/*/*.log",
            "- \"-\"",
            "not a follow: input",
        ),
        (
            state_mount,
            "mountPath: /var/lib/logredact\n              readOnly: true\n",
            "mounted read-write",
        ),
        (
            "type: DirectoryOrCreate",
            "type: Directory",
            "DirectoryOrCreate",
        ),
        (
            "hostPath:\n            path: /var/lib/logredact\n            type: DirectoryOrCreate",
            "emptyDir: {}",
            "DirectoryOrCreate",
        ),
        (
            "hostPath:\n            path: /var/lib/logredact",
            "hostPath:\n            path: /var/log/pods/.logredact",
            "not among the node's logs",
        ),
        (
            "- /var/lib/logredact\n",
            "- /var/lib/logredact/run\n",
            "the state volume's mount path",
        ),
        (
            "- /var/lib/logredact\n",
            "- /run/logredact\n",
            "is on no volume",
        ),
        (
            "- tls://log-aggregator.logging.svc.cluster.local:5170",
            "- tcp://log-aggregator.logging.svc.cluster.local:5170",
            "not tls://",
        ),
        (
            "- key: collector-ca.crt\n                      path: tls/ca.crt",
            "- key: collector-ca.crt\n                      path: tls/collector.crt",
            "no projected volume puts the CA bundle there",
        ),
        (
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 15",
            "--shutdown-grace",
        ),
        (
            "containerPort: 9102\n",
            "containerPort: 9102\n              hostPort: 9102\n",
            "hostPort",
        ),
        (
            "serviceAccountName: logredact-node\n",
            "serviceAccountName: logredact-node\n      hostNetwork: true\n",
            "hostNetwork",
        ),
        (
            "livenessProbe:\n            httpGet:\n              path: /healthz\n              port: 9102",
            "livenessProbe:\n            httpGet:\n              path: /healthz\n              port: 8080",
            "livenessProbe",
        ),
        (
            "readinessProbe:\n            httpGet:\n              path: /readyz",
            "readinessProbe:\n            httpGet:\n              path: /healthz",
            "readinessProbe",
        ),
        (
            "name: admin\n              containerPort: 9102",
            "name: admin\n              containerPort: 9103",
            "admin port",
        ),
        (
            "tolerations:\n        - operator: Exists\n",
            "",
            "toleration",
        ),
        (
            "- operator: Exists\n",
            "- operator: Exists\n          key: node-role.kubernetes.io/control-plane\n",
            "toleration",
        ),
        (
            "automountServiceAccountToken: false\n---",
            "automountServiceAccountToken: true\n---",
            "ServiceAccount",
        ),
        (
            "serviceAccountName: logredact-node\n      automountServiceAccountToken: false",
            "serviceAccountName: logredact-node",
            "API token",
        ),
        ("maxSurge: 0", "maxSurge: 1", "maxSurge"),
        ("maxUnavailable: 1\n", "", "maxUnavailable"),
        ("type: RollingUpdate", "type: OnDelete", "RollingUpdate"),
        (
            "drop: [ALL]",
            "drop: [ALL]\n              add: [DAC_READ_SEARCH]",
            "capability",
        ),
        (
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            "capability",
        ),
        ("runAsNonRoot: false", "runAsNonRoot: true", "never starts"),
        ("memory: 256Mi", "memory: 64Mi", "memory limit"),
        ("memory: 64Mi", "memory: 1Gi", "memory request"),
    ];
    for (from, to, expected) in mutations {
        assert_eq!(
            text.matches(from).count(),
            1,
            "the edit must apply exactly once: {from:?}"
        );
        let edited = text.replacen(from, to, 1);
        let objects = yaml::documents(&edited, "the edited daemonset.yaml");
        let problems = daemon_set_problems(&objects, &config);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{from:?} -> {to:?}: no problem mentions {expected:?}: {problems:?}"
        );
    }
}

/// One line of a container's log as the runtime writes it (CRI format), with
/// the file and a sequence number to tell lines apart, and a token in every
/// other line.
fn cri_line(file: &str, n: usize, tokens: &mut TokenGen) -> String {
    let message = if n % 2 == 0 {
        format!(
            "{file} {n}: calling the workspace with Authorization: Bearer {}",
            tokens.token()
        )
    } else {
        format!("{file} {n}: ok")
    };
    format!("2026-11-30T12:00:00.{n:09}Z stdout F {message}\n")
}

/// The DaemonSet played on a node's log layout: its arguments with the
/// container paths mapped to temporary directories (the ConfigMap and the
/// Secret as projected, the node's /var/log/pods, the state directory) and
/// a local TLS listener (OpenSSL's s_server, its certificate signed by a test
/// CA put in the place of the ConfigMap's placeholder CA) in place of the
/// aggregator. Containers write, the
/// kubelet rotates a log, a container restarts and a pod starts; then the
/// DaemonSet's pod is replaced (SIGTERM, lines written while none runs, a new
/// one on the same state directory), and the new pod forwards exactly what
/// the old one had not.
#[test]
fn daemon_set_forwards_every_container_log_and_resumes_after_a_pod_replacement() {
    let objects = daemon_set_objects();
    let pod = &the_daemon_set(&objects)["spec"]["template"]["spec"];
    let logredact = logredact_container(pod);
    let node = scratch("daemonset-node");
    let mut map: Vec<(String, PathBuf)> = Vec::new();
    for mount in array(&logredact["volumeMounts"], "volumeMounts") {
        let path = mount["mountPath"].as_str().unwrap();
        let local = node.join(path.trim_start_matches('/'));
        let volume = volume(pod, mount["name"].as_str().unwrap());
        if volume["projected"].is_object() {
            lay_out_projected(volume, &local);
        } else {
            // The node's directory (the kubelet creates the state
            // directory: DirectoryOrCreate).
            assert!(volume["hostPath"].is_object(), "unexpected volume {volume}");
            fs::create_dir_all(&local).unwrap();
        }
        map.push((path.to_string(), local));
    }
    let pods = node.join(POD_LOGS.trim_start_matches('/'));
    // The aggregator speaks TLS with a certificate for localhost, signed by
    // the test CA, which the operator's CA bundle replaces the ConfigMap's
    // placeholder with; the configuration's paths are mapped as the
    // arguments are.
    let mut aggregator = TlsCollector::start(free_port());
    let admin = free_port();
    let mut args: Vec<String> = string_list(&logredact["args"], "args")
        .iter()
        .map(|a| remap(a, &map))
        .collect();
    let config_file = PathBuf::from(option(&cli_options(&args), "--config"));
    replace_laid_out(&config_file, remap(&read(&config_file), &map).as_bytes());
    let ca = load_config(&config_file).tls.client.expect("tls.client").ca;
    replace_laid_out(&ca, &fs::read(Pki::get().path("ca.crt")).unwrap());
    set_option(
        &mut args,
        "--output",
        format!("tls://localhost:{}", aggregator.port),
    );
    // The ConfigMap's admin address is the pod's 0.0.0.0:9102; here a free
    // loopback port (the command line wins over the file).
    args.extend(["--admin".to_string(), format!("127.0.0.1:{admin}")]);
    let state = PathBuf::from(option(&cli_options(&args), "--state-dir"));
    let start = || {
        let mut command = binary();
        command.args(&args);
        for variable in logredact["env"].as_array().into_iter().flatten() {
            command.env(
                variable["name"].as_str().unwrap(),
                variable["value"].as_str().unwrap(),
            );
        }
        let mut run = Running::start(&mut command, Stdio::null());
        run.wait_for_port(admin);
        for probe in ["startupProbe", "readinessProbe"] {
            run.wait_for_probe(admin, logredact[probe]["httpGet"]["path"].as_str().unwrap());
        }
        run
    };

    // Containers' logs: <namespace>_<pod>_<uid>/<container>/<restart>.log.
    let web = pods.join("shop_web-0_3f2a9c1e-7b44-4c1a-9d0e-5a6b7c8d9e01");
    let dns = pods.join("kube-system_dns-1_8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697");
    let batch = pods.join("shop_batch-2_c0ffee00-1111-4222-8333-944455566677");
    let mut tokens = TokenGen::new(0x6e6f6465);
    let mut written: Vec<String> = Vec::new();
    let mut write = |path: &Path, lines: std::ops::Range<usize>, written: &mut Vec<String>| {
        let file = path.strip_prefix(&pods).unwrap().display().to_string();
        for n in lines {
            let line = cri_line(&file, n, &mut tokens);
            append(path, line.as_bytes());
            written.push(line);
        }
    };
    for container in [web.join("app"), web.join("proxy"), dns.join("dns")] {
        fs::create_dir_all(&container).unwrap();
        write(&container.join("0.log"), 0..20, &mut written);
    }

    let run = start();
    let redacted = |lines: &[String]| -> Vec<u8> { reference_redaction(lines.concat().as_bytes()) };
    aggregator.wait_for_total(redacted(&written).len(), Duration::from_secs(15));

    // The kubelet rotates a log (rename, and the runtime reopens the path),
    // a container restarts (its next log beside the last one), a pod starts.
    fs::rename(web.join("app/0.log"), web.join("app/0.log.20261130-120000")).unwrap();
    write(&web.join("app/0.log"), 20..30, &mut written);
    write(&dns.join("dns/1.log"), 0..10, &mut written);
    fs::create_dir_all(batch.join("job")).unwrap();
    write(&batch.join("job/0.log"), 0..10, &mut written);
    let first = aggregator.wait_for_total(redacted(&written).len(), Duration::from_secs(15));
    assert_forwarded(&first, &written, "the first pod", &run.errors());

    // The pod is replaced: stopped, lines written while none runs, and the
    // new pod resumes every file from the checkpoints on the node.
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "exit status {status}\n{stderr}");
    assert!(
        fs::read_dir(&state).unwrap().next().is_some(),
        "the checkpoints are saved in {}",
        state.display()
    );
    let mut later = Vec::new();
    write(&web.join("app/0.log"), 30..35, &mut later);
    write(&dns.join("dns/1.log"), 10..15, &mut later);
    write(&batch.join("job/0.log"), 10..15, &mut later);
    let run = start();
    let before = first.len();
    let all = aggregator.wait_for_total(before + redacted(&later).len(), Duration::from_secs(15));
    assert_forwarded(&all[before..], &later, "the new pod", &run.errors());
    let (status, _, stderr) = run.terminate();
    assert!(status.success(), "exit status {status}\n{stderr}");
}

/// `forwarded` holds each of the `written` lines once, redacted, whole, and
/// in order within its file.
fn assert_forwarded(forwarded: &[u8], written: &[String], what: &str, errors: &str) {
    let text = String::from_utf8_lossy(forwarded);
    let mut got: Vec<&str> = text.split_inclusive('\n').collect();
    let expected_lines: Vec<String> = written
        .iter()
        .map(|l| String::from_utf8(reference_redaction(l.as_bytes())).unwrap())
        .collect();
    let mut expected: Vec<&str> = expected_lines.iter().map(String::as_str).collect();
    // In order within each file: the lines of a file in the order forwarded
    // are the order written.
    let of_file = |lines: &[&str], file: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.split(' ').nth(3) == Some(file))
            .map(|l| l.to_string())
            .collect()
    };
    for file in expected.iter().filter_map(|l| l.split(' ').nth(3)) {
        assert_eq!(
            of_file(&got, file),
            of_file(&expected, file),
            "{what}: the lines of {file}\n{errors}"
        );
    }
    got.sort_unstable();
    expected.sort_unstable();
    assert!(
        got == expected,
        "{what}: forwarded\n{}\nexpected\n{}\n{errors}",
        got.concat(),
        expected.concat()
    );
}
