//! logredact as the deployment files start it: its command line (written out
//! as a list of arguments, or inside a shell command or a comment) and the
//! configuration file that command line names.

use std::path::{Path, PathBuf};

use logredact::config::{Config, InputSpec, OutputSpec};

use crate::IMAGE_BINARY;
use crate::common::repo_path;
use crate::yaml;

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

/// Options without a value that deployments may use, beyond SPEC §9's:
/// `--watch-config` reloads the configuration when the ConfigMap changes.
const CLI_FLAGS: [&str; 1] = ["--watch-config"];

/// `--option value` pairs of a logredact command line; every option is one
/// of SPEC §9's, which take a value, or one of `CLI_FLAGS` (value "").
pub fn cli_options(args: &[String]) -> Vec<(String, String)> {
    let mut options = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if CLI_FLAGS.contains(&arg.as_str()) {
            options.push((arg.clone(), String::new()));
            continue;
        }
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
pub fn option<'a>(options: &'a [(String, String)], option: &str) -> &'a str {
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

/// Replaces the value of `option` in `args`.
pub fn set_option(args: &mut [String], option: &str, value: String) {
    let at = args
        .iter()
        .position(|a| a == option)
        .unwrap_or_else(|| panic!("no {option} in {args:?}"));
    args[at + 1] = value;
}

/// The logredact arguments of a shell command line that runs `IMAGE_BINARY`
/// (up to the first redirection).
pub fn args_in_shell(command: &str) -> Vec<String> {
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

/// `text` with each container path prefix replaced by its local directory.
pub fn remap(text: &str, map: &[(String, PathBuf)]) -> String {
    let mut text = text.to_string();
    let mut map: Vec<&(String, PathBuf)> = map.iter().collect();
    map.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    for (prefix, local) in map {
        text = text.replace(prefix.as_str(), &local.to_string_lossy());
    }
    text
}

/// The repository file installed at `path` under /etc/logredact (the
/// image's copy of the config/ folder).
pub fn installed_config(path: &str) -> PathBuf {
    let installed = path
        .strip_prefix("/etc/logredact/")
        .unwrap_or_else(|| panic!("{path} is not in /etc/logredact"));
    repo_path(&format!("config/{installed}"))
}

/// logredact's reading of the configuration file at `path`.
pub fn load_config(path: &Path) -> Config {
    Config::load(path).unwrap_or_else(|e| panic!("logredact refuses {}: {e}", path.display()))
}

/// The `include` list of the configuration file at `path`, as written.
pub fn included_packs(path: &Path) -> Vec<String> {
    let config = yaml::document(path);
    match &config["include"] {
        serde_json::Value::Null => Vec::new(),
        list => serde_json::from_value(list.clone())
            .unwrap_or_else(|e| panic!("{}: include: {e}", path.display())),
    }
}

/// Whether the configuration file at `path` includes the rule pack `pack`:
/// listed in its `include`, and every rule of the pack among the rules
/// logredact loads from the file.
pub fn includes(path: &Path, pack: &str) -> bool {
    let listed = included_packs(path).iter().any(|p| p == pack);
    let rules = load_config(path).rules;
    let pack = load_config(&path.parent().unwrap().join(pack)).rules;
    listed && pack.iter().all(|rule| rules.contains(rule))
}
