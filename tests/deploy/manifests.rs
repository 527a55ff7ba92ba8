//! The deployment files checked as what they are, without running them:
//! the Kubernetes manifests against the Kubernetes API schemas
//! (`kubernetes-validate --strict`) and against what a logredact sidecar
//! needs (native sidecar, hardening, probes, the configuration and key it is
//! given), the node-level DaemonSet against the same hardening (its own
//! needs are checked in `kubernetes`), the Fluent Bit and Fluentd
//! configurations against what logredact's integration relies on (the
//! command-line interface of SPEC §9, the exec input's
//! `Threaded`/`Oneshot`/`Buf_Size`, consistent ports and routes, identical
//! classic and YAML variants), and every file under `deploy/` for a header
//! comment and placeholder-only tokens.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::IMAGE_BINARY;
use crate::common::{
    Pki, assert_only_placeholder_tokens, binary, read, repo_path, scratch, token_regex, transcript,
};
use crate::dockerfile;
use crate::fluent::{
    Fluentd, fluent_bit_config, fluent_bit_dir, fluent_bit_size, header_command, plugin, property,
};
use crate::invocation::{
    args_in_shell, cli_options, included_packs, includes, installed_config, load_config, option,
};
use crate::kubernetes::{
    self, array, base64_decode, container, containers, file_name, files_with_suffix,
    kubernetes_dir, logredact_container, resource, resources_of_kind, string_list, volume,
    volume_mounted_at,
};
use crate::tools::{output_of, tools};
use crate::yaml;

/// Kubernetes versions the manifests are validated against: the oldest they
/// claim (native sidecar containers are on by default from 1.29) and the
/// newest whose schemas the pinned kubernetes-validate bundles.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// The user the image runs as (Dockerfile).
const IMAGE_UID: i64 = 65532;

/// The admin port the probes use.
const ADMIN_PORT: i64 = 9102;

// ---------------------------------------------------------------------------
// Kubernetes

#[test]
fn kubernetes_manifests_pass_strict_schema_validation() {
    let tools = tools();
    let manifests = kubernetes::manifests();
    assert!(
        !manifests.is_empty(),
        "no manifests under deploy/kubernetes"
    );
    let resources: usize = manifests
        .iter()
        .map(|m| yaml::file_documents(m).len())
        .sum();
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
    let kustomization = yaml::document(&kubernetes_dir().join("kustomization.yaml"));
    assert_eq!(kustomization["kind"], "Kustomization");
    let listed: BTreeSet<String> = string_list(&kustomization["resources"], "resources")
        .into_iter()
        .collect();
    let present: BTreeSet<String> = kubernetes::manifests()
        .iter()
        .map(|p| file_name(p))
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml must list every manifest"
    );
}

#[test]
fn logredact_sidecars_are_native_hardened_and_probed() {
    image_runs_logredact_as_its_user();
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

        let security = &sidecar["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "{name}");
        assert_eq!(security["runAsUser"], IMAGE_UID, "{name}");

        let resources = &sidecar["resources"];
        assert_eq!(resources["requests"]["memory"], "16Mi", "{name}");
        assert_eq!(resources["requests"]["cpu"], "20m", "{name}");
        assert_eq!(resources["limits"]["memory"], "64Mi", "{name}");
        assert_eq!(resources["limits"]["cpu"], "500m", "{name}");

        assert_hardened_and_probed(name, pod, sidecar, &config_maps, &secrets);
    }
}

/// The node-level DaemonSet: the hardening of the sidecars, but as root (see
/// the comment in daemonset.yaml) and with resources for a node's files, and
/// what a node agent must be (`kubernetes::daemon_set_problems`).
#[test]
fn logredact_daemon_set_is_hardened_and_probed() {
    image_runs_logredact_as_its_user();
    let daemon_sets = resources_of_kind("DaemonSet");
    assert_eq!(
        daemon_sets.len(),
        1,
        "one DaemonSet under deploy/kubernetes"
    );
    let name = daemon_sets[0]["metadata"]["name"].as_str().unwrap();
    let pod = &daemon_sets[0]["spec"]["template"]["spec"];
    let logredact = logredact_container(pod);
    assert!(
        array(&pod["containers"], "containers").contains(logredact),
        "{name}: logredact is the pod's container"
    );
    assert_eq!(containers(pod).len(), 1, "{name}: logredact alone");
    let security = &logredact["securityContext"];
    assert_eq!(security["runAsUser"], 0, "{name}: reads root's log files");
    assert_hardened_and_probed(
        name,
        pod,
        logredact,
        &resources_of_kind("ConfigMap"),
        &resources_of_kind("Secret"),
    );

    let objects = kubernetes::daemon_set_objects();
    let config = kubernetes::daemon_set_config(&objects, &scratch("daemonset-hardened"));
    let problems = kubernetes::daemon_set_problems(&objects, &config);
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

/// The image's entrypoint is logredact and its user is 65532.
fn image_runs_logredact_as_its_user() {
    let stages = dockerfile::stages();
    let image = stages.last().unwrap();
    assert_eq!(
        image.last("USER"),
        Some(format!("{IMAGE_UID}:{IMAGE_UID}").as_str()),
        "Dockerfile USER"
    );
    assert_eq!(
        image.last("ENTRYPOINT"),
        Some(format!("[\"{IMAGE_BINARY}\"]").as_str()),
        "Dockerfile ENTRYPOINT"
    );
}

/// What every logredact container of the manifests shares, whatever runs
/// it: the image's entrypoint, a read-only root file system, no privilege
/// and no capability, the default seccomp profile, the probes on the admin
/// endpoint, and the configuration and key projected read-only from the
/// ConfigMap and the Secret, to logredact only.
fn assert_hardened_and_probed(
    name: &str,
    pod: &Value,
    sidecar: &Value,
    config_maps: &[Value],
    secrets: &[Value],
) {
    // The image's entrypoint runs; the manifest gives arguments only.
    assert!(sidecar["command"].is_null(), "{name}: no command override");
    let args = cli_options(&string_list(&sidecar["args"], "args"));
    assert_eq!(option(&args, "--config"), "/etc/logredact/logredact.yaml");
    assert_eq!(
        option(&args, "--fingerprint-key-file"),
        "/etc/logredact/key/key"
    );

    let security = &sidecar["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(
        security["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{name}"
    );
    assert!(
        security["capabilities"]["add"].is_null(),
        "{name}: no capability added"
    );
    assert_eq!(
        security["seccompProfile"]["type"], "RuntimeDefault",
        "{name}"
    );
    assert!(security["privileged"] != true, "{name}");

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
    let (config_map, projected_config) =
        projected_source(name, sources, "configMap", config_maps, "logredact.yaml");
    assert!(
        projects(config_map, "logredact.yaml", |key| key == "logredact.yaml"),
        "{name}: logredact.yaml is projected to /etc/logredact/logredact.yaml"
    );
    // Every pack that logredact.yaml includes is projected where the
    // include points (relative to /etc/logredact).
    let configuration = yaml::text_document(
        projected_config["data"]["logredact.yaml"].as_str().unwrap(),
        "the ConfigMap's logredact.yaml",
    );
    for pack in string_list(&configuration["include"], "include") {
        assert!(
            projects(config_map, &pack, |key| !projected_config["data"][key]
                .is_null()),
            "{name}: the included {pack} is projected to /etc/logredact/{pack}"
        );
    }
    let (secret, _) = projected_source(name, sources, "secret", secrets, "key");
    assert!(
        projects(secret, "key/key", |key| key == "key"),
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

/// The `field` source (`configMap` or `secret`) of the projected volume
/// `sources` of Deployment `name`, and the object of the manifests it names,
/// which must hold the data `key`.
fn projected_source<'a>(
    name: &str,
    sources: &'a [Value],
    field: &str,
    objects: &'a [Value],
    key: &str,
) -> (&'a Value, &'a Value) {
    let source = sources
        .iter()
        .find_map(|s| s.get(field))
        .unwrap_or_else(|| panic!("{name}: no {field} in the projected volume"));
    let object = objects
        .iter()
        .find(|o| o["metadata"]["name"] == source["name"] && !o["data"][key].is_null())
        .unwrap_or_else(|| {
            panic!(
                "{name}: the {field} {} with {key} is in the manifests",
                source["name"]
            )
        });
    (source, object)
}

/// Whether `source` (a ConfigMap or Secret of a projected volume) projects
/// to `path` a key that `key` accepts.
fn projects(source: &Value, path: &str, key: impl Fn(&str) -> bool) -> bool {
    array(&source["items"], "items")
        .iter()
        .any(|i| i["path"] == path && i["key"].as_str().is_some_and(&key))
}

/// The application container's command line, its arguments joined.
fn app_command(pod: &Value) -> String {
    string_list(&container(pod, "app")["args"], "args").concat()
}

#[test]
fn shared_volume_sidecar_follows_the_application_log() {
    let deployment = resource("Deployment", "demo-app-shared-volume");
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
    assert!(app_command(pod).contains(">> /var/log/app/app.log"));
}

#[test]
fn tcp_sidecar_proxies_each_connection_to_the_collector_over_tls() {
    let deployment = resource("Deployment", "demo-app-tcp");
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = logredact_container(pod);
    let args = cli_options(&string_list(&sidecar["args"], "args"));
    // Plaintext on the pod's loopback only; TLS across the cluster network,
    // trusting the CA bundle the ConfigMap's configuration names, which the
    // sidecar finds there.
    assert_eq!(option(&args, "--input"), "tcp://127.0.0.1:5170");
    assert_eq!(
        option(&args, "--output"),
        "tls://log-collector.logging.svc.cluster.local:5170"
    );
    let ca = configmap_configuration()["tls"]["client"]["ca"]
        .as_str()
        .expect("tls.client.ca in the ConfigMap's logredact.yaml")
        .to_string();
    assert!(
        kubernetes::projects_file(pod, sidecar, &ca),
        "tls.client.ca {ca} is projected into the sidecar"
    );
    assert!(app_command(pod).contains("nc 127.0.0.1 5170"));
}

/// The ConfigMap's logredact.yaml, parsed.
fn configmap_configuration() -> Value {
    let config_map = resource("ConfigMap", "logredact-config");
    yaml::text_document(
        config_map["data"]["logredact.yaml"].as_str().unwrap(),
        "the ConfigMap's logredact.yaml",
    )
}

/// The ConfigMap's collector CA is an obvious placeholder, not a
/// certificate: a logredact with a `tls://` output refuses to start with it
/// (a clear configuration error, not a connection that trusts nothing or
/// anything), and starts once it is replaced with a CA's PEM certificate.
#[test]
fn configmap_collector_ca_is_a_placeholder_that_must_be_replaced() {
    let config_map = resource("ConfigMap", "logredact-config");
    let placeholder = config_map["data"]["collector-ca.crt"].as_str().unwrap();
    assert!(placeholder.starts_with("REPLACE-ME"), "{placeholder}");
    assert!(!placeholder.contains("-----BEGIN"), "{placeholder}");
    // Laid out as the sidecar mounts it, the container's /etc/logredact here.
    let dir = scratch("configmap-ca");
    let container_dir = "/etc/logredact";
    let text = config_map["data"]["logredact.yaml"]
        .as_str()
        .unwrap()
        .replace(container_dir, dir.to_str().unwrap());
    fs::write(dir.join("logredact.yaml"), text).unwrap();
    for pack in included_packs(&dir.join("logredact.yaml")) {
        fs::create_dir_all(dir.join(&pack).parent().unwrap()).unwrap();
        fs::copy(repo_path(&format!("config/{pack}")), dir.join(&pack)).unwrap();
    }
    let ca = dir.join("tls/ca.crt");
    fs::create_dir_all(ca.parent().unwrap()).unwrap();
    fs::write(&ca, placeholder).unwrap();
    let check = || {
        let mut command = binary();
        command
            .arg("check-config")
            .arg(dir.join("logredact.yaml"))
            .args(["--output", "tls://localhost:5170"]);
        output_of(&mut command, "logredact check-config").unwrap_or_else(|e| panic!("{e}"))
    };
    let refused = check();
    assert_eq!(refused.status.code(), Some(2), "{}", transcript(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!(
            "tls.client.ca: {}: no certificate in it",
            ca.display()
        )),
        "{}",
        transcript(&refused)
    );
    fs::copy(Pki::get().path("ca.crt"), &ca).unwrap();
    let accepted = check();
    assert!(accepted.status.success(), "{}", transcript(&accepted));
}

#[test]
fn configmap_configuration_is_accepted_by_logredact() {
    let config_map = resource("ConfigMap", "logredact-config");
    let text = config_map["data"]["logredact.yaml"].as_str().unwrap();
    let dir = scratch("configmap");
    let path = dir.join("logredact.yaml");
    fs::write(&path, text).unwrap();
    // The packs it includes are keys of the ConfigMap too (the mount hides
    // the image's rules/ folder), verbatim copies of the repository's packs.
    let included = included_packs(&path);
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
        binary().arg("check-config").arg(&path),
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

    // The same rule as the shipped default, then the packs' rules.
    let config = load_config(&path);
    let mut expected = load_config(&repo_path("config/logredact.yaml")).rules;
    for pack in &included {
        expected.extend(load_config(&repo_path(&format!("config/{pack}"))).rules);
    }
    assert_eq!(config.rules, expected);

    // Probes come from the node: the admin endpoint must listen on the pod IP,
    // on the port the probes use.
    assert_eq!(
        config.admin.as_deref(),
        Some(format!("0.0.0.0:{ADMIN_PORT}").as_str())
    );

    // Memory plan: about 16 MiB per busy process plus about 0.3 MiB per TCP
    // connection must fit in the 64Mi limit.
    let connections = config.limits.max_connections as f64;
    assert!(
        16.0 + 0.3 * connections <= 64.0,
        "max_connections {connections}"
    );
}

#[test]
fn secret_holds_an_obvious_placeholder_key() {
    let secret = resource("Secret", "logredact-fingerprint-key");
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
    let args = cli_options(&args_in_shell(command));
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
    // Issue 14, items 11-13: a long line skips itself, not the rest of the
    // file; lines there at the first start are sent; non-ASCII is not
    // escaped as \uXXXX before a token.
    let tail = plugin(&sections, "input", "tail");
    assert_eq!(property(tail, "skip_long_lines"), "true");
    assert_eq!(property(tail, "read_from_head"), "true");
    assert!(
        tail.contains_key("db"),
        "read_from_head without a db re-sends at every start"
    );
    let service = sections
        .iter()
        .find(|(kind, _)| kind == "service")
        .map(|(_, properties)| properties)
        .expect("a service section");
    assert_eq!(property(service, "json.escape_unicode"), "false");
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
        let args = cli_options(&args_in_shell(&header_command(file)));
        assert_eq!(option(&args, "--input"), expected_input, "{file}");
        assert_eq!(option(&args, "--output"), expected_output, "{file}");
        // JSON lines: the configuration includes the JSON-escape pack. The
        // path is the installed config/ folder (the image's /etc/logredact).
        let config = installed_config(option(&args, "--config"));
        assert!(
            includes(&config, "rules/json-escaped.yaml"),
            "{file}: the configuration includes rules/json-escaped.yaml"
        );
    }
}

// ---------------------------------------------------------------------------
// Fluentd

#[test]
fn fluentd_exec_filter_exchanges_json_with_a_respawned_logredact() {
    let fluentd = Fluentd::shipped();
    let value = |section: &str, key: &str| fluentd.value(section, key);
    let filter = fluentd.exec_filter();

    let command = value(&filter, "command");
    let args = cli_options(&args_in_shell(command));
    assert!(
        ["-1", "inf"].contains(&value(&filter, "child_respawn")),
        "child_respawn restarts logredact forever"
    );
    // JSON in and out: the configuration includes the JSON-escape pack (the
    // path is the installed config/ folder, the image's /etc/logredact).
    let config = installed_config(option(&args, "--config"));
    assert!(
        includes(&config, "rules/json-escaped.yaml"),
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
        fluentd.has(&format!("match {tag}"), "@type"),
        "the redacted records (tag {tag}) are routed somewhere"
    );
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
    for path in files {
        let bytes = fs::read(&path).unwrap();
        if path.extension().is_some_and(|e| e == "json") {
            // JSON has no comments: a Grafana dashboard says what it is for
            // in its `description`.
            let document: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                document["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{} must say what it is for in its description",
                path.display()
            );
        } else {
            assert!(
                bytes.starts_with(b"#"),
                "{} must open with a comment saying what it is for",
                path.display()
            );
        }
        assert_only_placeholder_tokens(&path, &bytes);
    }
}
