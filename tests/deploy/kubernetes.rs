//! The Kubernetes objects under `deploy/kubernetes`, and the parts of a pod
//! spec the checks look into.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::repo_path;
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
