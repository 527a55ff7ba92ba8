//! The Dockerfile, read as the checks need it: its stages and their
//! instructions, and what the final stage copies where (the image's file
//! layout), which can be laid out into a directory.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{read, repo_path};

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
pub fn stages() -> Vec<Stage> {
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
    let stages = stages();
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
