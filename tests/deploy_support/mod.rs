//! Readers for the deployment files, shared by the tests that run logredact
//! the way a deployment does (`static_image.rs`, `integrations.rs`) and
//! cross-checked in `deploy_manifests.rs`:
//!
//! - the Dockerfile: stages, instructions, and what the final stage copies
//!   where (the image's file layout), laid out into a directory;
//! - a small YAML reader for the block-style subset the Kubernetes manifests
//!   use (the test dependencies have no YAML crate; `deploy_manifests.rs`
//!   checks that it reads every manifest exactly as PyYAML does);
//! - Fluentd and Fluent Bit (classic) configuration files.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The target directory (`CARGO_TARGET_TMPDIR` is its `tmp` subdirectory).
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Dockerfile

/// One instruction: its keyword (upper case) and the rest of it, with line
/// continuations joined.
#[derive(Clone, Debug)]
pub struct Instruction {
    pub keyword: String,
    pub rest: String,
}

/// One build stage: the image it starts from, its name, its instructions.
#[derive(Clone, Debug)]
pub struct Stage {
    pub from: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The instructions with `keyword`.
    pub fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|i| i.keyword == keyword)
            .map(|i| i.rest.as_str())
            .collect()
    }

    /// The last instruction with `keyword` (the one that takes effect).
    pub fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last().copied()
    }

    /// An exec-form (`["a", "b"]`) argument list, such as ENTRYPOINT's.
    pub fn exec_form(&self, keyword: &str) -> Vec<String> {
        let rest = self
            .last(keyword)
            .unwrap_or_else(|| panic!("the stage has no {keyword}"));
        serde_json::from_str(rest)
            .unwrap_or_else(|e| panic!("{keyword} {rest} is not in exec form (a JSON list): {e}"))
    }

    /// `ARG NAME=default` values.
    pub fn arg_default(&self, name: &str) -> Option<String> {
        self.all("ARG").into_iter().find_map(|rest| {
            let (key, value) = rest.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
        })
    }

    /// `LABEL key="value" ...` pairs (values double-quoted, as in this
    /// repository's Dockerfile).
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut labels = Vec::new();
        for rest in self.all("LABEL") {
            let mut text = rest.trim();
            while !text.is_empty() {
                let (key, after) = text
                    .split_once('=')
                    .unwrap_or_else(|| panic!("LABEL {rest}: expected key=\"value\""));
                let after = after
                    .strip_prefix('"')
                    .unwrap_or_else(|| panic!("LABEL {rest}: values must be double-quoted"));
                let end = after
                    .find('"')
                    .unwrap_or_else(|| panic!("LABEL {rest}: unterminated value"));
                labels.push((key.trim().to_string(), after[..end].to_string()));
                text = after[end + 1..].trim_start();
            }
        }
        labels
    }
}

/// The Dockerfile's stages, in order.
pub fn dockerfile_stages() -> Vec<Stage> {
    let text = read(&repo_path("Dockerfile"));
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head.trim_end());
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continued line"
    );

    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        if line.is_empty() {
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim().to_string();
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => panic!("FROM {rest}: expected FROM IMAGE [AS NAME]"),
            };
            stages.push(Stage {
                from: words[0].to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(Instruction { keyword, rest });
        } else {
            assert_eq!(keyword, "ARG", "only ARG may come before the first FROM");
        }
    }
    assert!(!stages.is_empty(), "the Dockerfile has no FROM");
    stages
}

/// Where one file or folder of the image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A path in the build context (the repository).
    Context(String),
    /// A path in an earlier build stage.
    Stage { stage: String, path: String },
}

/// One COPY of the final stage: sources and destination.
#[derive(Clone, Debug)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
}

/// The final stage's COPY instructions (shell form, as in this repository).
pub fn final_stage_copies() -> Vec<Copy> {
    let stages = dockerfile_stages();
    let last = stages.last().unwrap();
    for keyword in ["ADD", "RUN"] {
        assert!(
            last.all(keyword).is_empty(),
            "the final stage must not {keyword}: it has no shell, and everything in it comes from COPY"
        );
    }
    last.all("COPY")
        .into_iter()
        .map(|rest| {
            assert!(!rest.starts_with('['), "COPY {rest}: use the shell form");
            let mut from = None;
            let mut paths = Vec::new();
            for word in rest.split_whitespace() {
                if let Some(stage) = word.strip_prefix("--from=") {
                    from = Some(stage.to_string());
                } else if word.starts_with("--") {
                    panic!("COPY {rest}: option {word} is not understood by the test");
                } else {
                    assert!(
                        !word.contains(['*', '?', '$']),
                        "COPY {rest}: wildcards and variables are not understood by the test"
                    );
                    paths.push(word.to_string());
                }
            }
            assert!(paths.len() >= 2, "COPY {rest}: sources and a destination");
            let dest = paths.pop().unwrap();
            let sources = paths
                .into_iter()
                .map(|path| match &from {
                    Some(stage) => Source::Stage {
                        stage: stage.clone(),
                        path,
                    },
                    None => Source::Context(path),
                })
                .collect();
            Copy { sources, dest }
        })
        .collect()
}

/// Lays out under `root` what the final stage's COPY lines put in the image,
/// with `from_stage` giving the local file for a path copied from an earlier
/// build stage (`None`: leave it out). Returns the image paths of the files
/// laid out, sorted.
pub fn lay_out_final_stage(
    root: &Path,
    from_stage: &dyn Fn(&str, &str) -> Option<PathBuf>,
) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root).unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    let mut files = Vec::new();
    for copy in final_stage_copies() {
        let into_dir = copy.dest.ends_with('/') || copy.sources.len() > 1;
        for source in &copy.sources {
            let (local, name) = match source {
                Source::Context(path) => {
                    assert!(
                        !path.split('/').any(|p| p == ".."),
                        "COPY {path}: outside the build context"
                    );
                    let local = repo_path(path.trim_end_matches('/'));
                    assert!(local.exists(), "COPY {path}: not in the repository");
                    (Some(local), file_name_of(path))
                }
                Source::Stage { stage, path } => (from_stage(stage, path), file_name_of(path)),
            };
            let Some(local) = local else { continue };
            let dest = if local.is_dir() || !into_dir {
                copy.dest.trim_end_matches('/').to_string()
            } else {
                format!("{}/{name}", copy.dest.trim_end_matches('/'))
            };
            copy_into(root, &local, &dest, &mut files);
        }
    }
    files.sort();
    files
}

fn file_name_of(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// Copies a file or a folder's contents (as COPY does) to image path `dest`.
fn copy_into(root: &Path, local: &Path, dest: &str, files: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let target = root.join(dest.trim_start_matches('/'));
    // Parent folders as COPY creates them: 0755.
    let mut dir = root.to_path_buf();
    let parent = Path::new(dest.trim_start_matches('/'))
        .parent()
        .unwrap_or(Path::new(""));
    for part in parent.components() {
        dir.push(part);
        if !dir.exists() {
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    if local.is_dir() {
        if !target.exists() {
            fs::create_dir(&target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(local)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            copy_into(root, &entry, &format!("{dest}/{name}"), files);
        }
    } else {
        // fs::copy keeps the permission bits, as COPY does.
        fs::copy(local, &target)
            .unwrap_or_else(|e| panic!("cannot copy {} to {dest}: {e}", local.display()));
        files.push(dest.to_string());
    }
}

// ---------------------------------------------------------------------------
// YAML (block-style subset)

/// The documents of a YAML text, as JSON values. Reads block mappings and
/// sequences, plain, single- and double-quoted scalars, literal block scalars
/// (`|`, `|-`, `|+`), flow sequences of scalars and comments, with YAML 1.1
/// scalar types as PyYAML resolves them (`on`/`off`/`yes`/`no` booleans,
/// `0440` octal). Anything else (anchors, flow mappings, folded scalars,
/// tags) makes it panic rather than guess.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    let mut documents = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            documents.push(std::mem::take(&mut current));
        } else {
            assert!(line != "...", "YAML document end markers are not supported");
            current.push(line);
        }
    }
    documents.push(current);
    documents
        .into_iter()
        .filter_map(|lines| {
            let mut reader = YamlReader { lines, at: 0 };
            reader.skip_blank();
            if reader.at >= reader.lines.len() {
                return None;
            }
            let indent = reader.indent();
            let value = reader.node(indent);
            reader.skip_blank();
            assert!(
                reader.at >= reader.lines.len(),
                "YAML: unexpected line {:?}",
                reader.lines[reader.at]
            );
            Some(value)
        })
        .collect()
}

struct YamlReader<'a> {
    lines: Vec<&'a str>,
    at: usize,
}

impl YamlReader<'_> {
    fn is_blank(line: &str) -> bool {
        let t = line.trim_start();
        t.is_empty() || t.starts_with('#')
    }

    fn skip_blank(&mut self) {
        while self.at < self.lines.len() && Self::is_blank(self.lines[self.at]) {
            self.at += 1;
        }
    }

    fn indent(&self) -> usize {
        let line = self.lines[self.at];
        assert!(!line.starts_with('\t'), "YAML: tab indentation");
        line.len() - line.trim_start_matches(' ').len()
    }

    /// The block node whose lines start at column `indent`.
    fn node(&mut self, indent: usize) -> Value {
        let content = self.lines[self.at][indent..].to_string();
        if content == "-" || content.starts_with("- ") {
            self.sequence(indent)
        } else {
            self.mapping(indent, None)
        }
    }

    fn sequence(&mut self, indent: usize) -> Value {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            if self.at >= self.lines.len() || self.indent() != indent {
                break;
            }
            let content = self.lines[self.at][indent..].to_string();
            if !(content == "-" || content.starts_with("- ")) {
                break;
            }
            let rest = content[1..].trim_start();
            let item_indent = indent + content.len() - rest.len();
            let rest = strip_comment(rest);
            if rest.is_empty() {
                self.at += 1;
                items.push(self.nested(indent));
            } else if let Some(header) = block_scalar_header(&rest) {
                self.at += 1;
                items.push(self.block_scalar(indent, header));
            } else if split_key(&rest).is_some() {
                // A mapping that starts on the item's line.
                items.push(self.mapping(item_indent, Some(item_indent)));
            } else {
                self.at += 1;
                items.push(scalar_or_flow(&rest));
            }
        }
        Value::Array(items)
    }

    /// A mapping at column `indent`; `first_at` is the column of its first
    /// key when that key follows a sequence item's `- `.
    fn mapping(&mut self, indent: usize, first_at: Option<usize>) -> Value {
        let mut map = Map::new();
        let mut first = first_at;
        loop {
            self.skip_blank();
            if self.at >= self.lines.len() {
                break;
            }
            let column = match first.take() {
                Some(column) => column,
                None => {
                    if self.indent() != indent {
                        assert!(
                            self.indent() < indent,
                            "YAML: unexpected indentation at {:?}",
                            self.lines[self.at]
                        );
                        break;
                    }
                    indent
                }
            };
            let content = strip_comment(&self.lines[self.at][column..]);
            if content == "-" || content.starts_with("- ") {
                break;
            }
            let (key, value) = split_key(&content)
                .unwrap_or_else(|| panic!("YAML: expected 'key: value' in {content:?}"));
            let key = match scalar(&key) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.at += 1;
            let value = if value.is_empty() {
                self.nested(indent)
            } else if let Some(header) = block_scalar_header(&value) {
                self.block_scalar(indent, header)
            } else {
                scalar_or_flow(&value)
            };
            assert!(
                map.insert(key.clone(), value).is_none(),
                "YAML: duplicate key {key}"
            );
        }
        Value::Object(map)
    }

    /// The node after `key:` or `-` with nothing on the line: indented
    /// deeper, or a sequence at the same column as a mapping key; else null.
    fn nested(&mut self, indent: usize) -> Value {
        self.skip_blank();
        if self.at >= self.lines.len() {
            return Value::Null;
        }
        let deeper = self.indent();
        let content = &self.lines[self.at][deeper..];
        let is_item = content == "-" || content.starts_with("- ");
        if deeper > indent || (deeper == indent && is_item) {
            self.node(deeper)
        } else {
            Value::Null
        }
    }

    /// A literal block scalar under a node at column `parent`.
    fn block_scalar(&mut self, parent: usize, chomping: char) -> Value {
        let mut lines: Vec<&str> = Vec::new();
        let mut block_indent = None;
        while self.at < self.lines.len() {
            let line = self.lines[self.at];
            if line.trim().is_empty() {
                lines.push("");
                self.at += 1;
                continue;
            }
            let indent = line.len() - line.trim_start_matches(' ').len();
            let block = *block_indent.get_or_insert(indent);
            if indent < block || indent <= parent {
                break;
            }
            lines.push(&line[block..]);
            self.at += 1;
        }
        // Trailing blank lines belong to the chomping, not the content.
        let mut trailing = 0;
        while lines.last() == Some(&"") {
            lines.pop();
            trailing += 1;
        }
        let mut text = lines.join("\n");
        match chomping {
            '-' => {}
            '+' => {
                text.push('\n');
                text.push_str(&"\n".repeat(trailing));
            }
            _ => text.push('\n'),
        }
        if lines.is_empty() {
            text.clear();
        }
        Value::String(text)
    }
}

/// `|`, `|-` or `|+`: the chomping indicator (`' '` for clip).
fn block_scalar_header(value: &str) -> Option<char> {
    match value {
        "|" => Some(' '),
        "|-" => Some('-'),
        "|+" => Some('+'),
        _ => {
            assert!(
                !value.starts_with('>') && !value.starts_with('|'),
                "YAML: block scalar {value:?} is not supported"
            );
            None
        }
    }
}

/// The line without a trailing comment (a `#` after a space, outside quotes).
fn strip_comment(text: &str) -> String {
    let bytes = text.as_bytes();
    let (mut single, mut double) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single && (i == 0 || bytes[i - 1] != b'\\') => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => {
                return text[..i].trim_end().to_string();
            }
            _ => {}
        }
    }
    text.trim_end().to_string()
}

/// `key: value` (or `key:`) split at the first `: ` outside quotes.
fn split_key(text: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    if matches!(bytes.first(), Some(b'[') | Some(b'{')) {
        return None;
    }
    let (mut single, mut double) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single && (i == 0 || bytes[i - 1] != b'\\') => double = !double,
            b':' if !single && !double && (i + 1 == bytes.len() || bytes[i + 1] == b' ') => {
                return Some((text[..i].to_string(), text[i + 1..].trim().to_string()));
            }
            _ => {}
        }
    }
    None
}

fn scalar_or_flow(text: &str) -> Value {
    assert!(
        !text.starts_with(['&', '*', '!', '{']),
        "YAML: anchors, aliases, tags and flow mappings are not supported: {text:?}"
    );
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .unwrap_or_else(|| panic!("YAML: unterminated flow sequence {text:?}"));
        assert!(
            !inner.contains(['[', '{']),
            "YAML: nested flow collections are not supported"
        );
        if inner.trim().is_empty() {
            return Value::Array(Vec::new());
        }
        // Items are split at commas outside quotes.
        let mut items = Vec::new();
        let (mut single, mut double, mut start) = (false, false, 0);
        let bytes = inner.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\'' if !double => single = !single,
                b'"' if !single => double = !double,
                b',' if !single && !double => {
                    items.push(scalar(inner[start..i].trim()));
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(scalar(inner[start..].trim()));
        return Value::Array(items);
    }
    scalar(text)
}

/// A scalar, resolved as PyYAML (YAML 1.1) resolves it.
fn scalar(text: &str) -> Value {
    if let Some(inner) = text.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .unwrap_or_else(|| panic!("YAML: unterminated quote {text:?}"));
        return Value::String(inner.replace("''", "'"));
    }
    if let Some(inner) = text.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .unwrap_or_else(|| panic!("YAML: unterminated quote {text:?}"));
        // JSON's escapes are a subset of YAML's double-quoted ones.
        return Value::String(
            serde_json::from_str(&format!("\"{inner}\""))
                .unwrap_or_else(|e| panic!("YAML: unsupported escape in {text:?}: {e}")),
        );
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        let digits = unsigned.replace('_', "");
        let value = if digits.len() > 1 && digits.starts_with('0') {
            i64::from_str_radix(&digits, 8).ok()
        } else {
            digits.parse::<i64>().ok()
        };
        if let Some(value) = value {
            return Value::Number(Number::from(if negative { -value } else { value }));
        }
    }
    assert!(
        !(unsigned.contains('.') && unsigned.parse::<f64>().is_ok()),
        "YAML: floats are not supported: {text:?}"
    );
    Value::String(text.to_string())
}

// ---------------------------------------------------------------------------
// Fluentd and Fluent Bit configuration files

/// `(section path, key, value)` of every parameter of a Fluentd
/// configuration; the path is the enclosing `<...>` headers joined by `/`.
pub fn fluentd_parameters(text: &str) -> Vec<(String, String, String)> {
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
    parameters
}

/// The sections of a classic-format Fluent Bit configuration: the header
/// (lower case) and the `Key Value` pairs (keys lower case).
pub fn fluent_bit_sections(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((header.to_ascii_lowercase(), Vec::new()));
            continue;
        }
        let (key, value) = line
            .split_once(char::is_whitespace)
            .unwrap_or_else(|| panic!("'{line}' has no value"));
        sections
            .last_mut()
            .unwrap_or_else(|| panic!("'{line}' outside a section"))
            .1
            .push((key.to_ascii_lowercase(), value.trim().to_string()));
    }
    sections
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
