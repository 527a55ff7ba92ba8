//! Fluent Bit's configuration formats (classic and YAML) and Fluentd's, read
//! into what the checks compare: sections or parameters, names lower-cased,
//! Fluent Bit's booleans in one spelling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{read, repo_path};
use crate::yaml;

/// One section of a Fluent Bit configuration: `service`, `input` or
/// `output`, with its properties (names lower-cased, booleans normalised).
pub type Section = (String, BTreeMap<String, String>);

pub fn fluent_bit_dir() -> PathBuf {
    repo_path("deploy/fluent-bit")
}

/// Fluent Bit's booleans as one spelling; other values unchanged. This also
/// makes YAML 1.1's `on` (a string to serde_yaml, see `yaml`) and `true` one.
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
pub fn classic_sections(path: &Path) -> Vec<Section> {
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
    let document = yaml::document(path);
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
        let plugins = document["pipeline"][list]
            .as_array()
            .unwrap_or_else(|| panic!("{}: pipeline.{list} is not a list", path.display()));
        for plugin in plugins {
            sections.push((kind.to_string(), properties(plugin)));
        }
    }
    sections
}

/// The configuration `stem` (`.conf` and `.yaml`), checked to be the same.
pub fn fluent_bit_config(stem: &str) -> Vec<Section> {
    let classic = classic_sections(&fluent_bit_dir().join(format!("{stem}.conf")));
    let yaml = yaml_sections(&fluent_bit_dir().join(format!("{stem}.yaml")));
    assert_eq!(
        classic, yaml,
        "{stem}.conf and {stem}.yaml must say the same"
    );
    classic
}

/// The one plugin named `name` of `kind`.
pub fn plugin<'a>(sections: &'a [Section], kind: &str, name: &str) -> &'a BTreeMap<String, String> {
    let found: Vec<&BTreeMap<String, String>> = sections
        .iter()
        .filter(|(k, p)| k == kind && p.get("name").map(String::as_str) == Some(name))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} expected");
    found[0]
}

pub fn property<'a>(properties: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    properties
        .get(key)
        .unwrap_or_else(|| panic!("{key} is not set: {properties:?}"))
}

/// Bytes of a Fluent Bit size (`4096`, `32k`, `1mb`; decimal units).
pub fn fluent_bit_size(text: &str) -> u64 {
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

/// The logredact command line in the header comment of a Fluent Bit file
/// (joined across `\` continuations), from the word `logredact` on.
pub fn header_command(file: &str) -> String {
    let text = read(&fluent_bit_dir().join(file));
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
    line
}

/// The parameters of a Fluentd configuration, each with the path of its
/// section: the enclosing `<...>` headers joined by `/`.
pub struct Fluentd(Vec<(String, String, String)>);

impl Fluentd {
    /// `deploy/fluentd/fluent.conf`.
    pub fn shipped() -> Fluentd {
        Fluentd::file("fluent.conf")
    }

    /// The configuration `name` in `deploy/fluentd`.
    pub fn file(name: &str) -> Fluentd {
        let text = read(&repo_path("deploy/fluentd").join(name));
        let mut path: Vec<String> = Vec::new();
        let mut parameters = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("</") {
                path.pop().expect("a closing tag without an opening one");
            } else if let Some(header) = line.strip_prefix('<').and_then(|l| l.strip_suffix('>')) {
                path.push(header.to_string());
            } else {
                let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                parameters.push((path.join("/"), key.to_string(), value.trim().to_string()));
            }
        }
        assert!(path.is_empty(), "unclosed sections: {path:?}");
        Fluentd(parameters)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn value(&self, section: &str, key: &str) -> &str {
        self.get(section, key)
            .unwrap_or_else(|| panic!("<{section}> has no {key}"))
    }

    /// Whether the section has a `key` parameter at all.
    pub fn has(&self, section: &str, key: &str) -> bool {
        self.get(section, key).is_some()
    }

    /// The section of the `exec_filter` output.
    pub fn exec_filter(&self) -> String {
        self.0
            .iter()
            .find(|(_, k, v)| k == "@type" && v == "exec_filter")
            .map(|(section, _, _)| section.clone())
            .expect("an exec_filter output")
    }
}
