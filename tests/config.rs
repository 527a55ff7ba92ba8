//! Configuration: the built-in default, `check-config`, and every refusal —
//! exit status 2 and a message naming the file, the line, the column and the
//! cause, all before any input is read.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use logredact::config::{Config, InputSpec, OutputSpec};

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let path = scratch(name).join("logredact.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `logredact --config PATH` with a stdin that is never closed: a
/// refusal must come before any input is read.
fn refused(path: &Path) -> String {
    refused_with_env(path, &[])
}

/// `refused`, with `env` set for both runs and the test variables of
/// [`with_test_env`] not otherwise set.
fn refused_with_env(path: &Path, env: &[(&str, &OsStr)]) -> String {
    let mut child = spawn_piped(with_test_env(binary(), env).arg("--config").arg(path));
    let _stdin = child.stdin.take();
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    // check-config refuses the same file the same way.
    let check = with_test_env(binary(), env)
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
    assert_eq!(String::from_utf8(check.stderr).unwrap(), stderr);
    stderr
}

#[test]
fn the_built_in_default_is_config_logredact_yaml() {
    let file = Config::load(&manifest_path("config/logredact.yaml")).unwrap();
    let builtin = Config::builtin();
    assert_eq!(file.rules, builtin.rules);
    assert_eq!(file.inputs, [InputSpec::Stdin]);
    assert_eq!(file.output, OutputSpec::Stdout);
    let rule = &builtin.rules[0];
    assert_eq!(builtin.rules.len(), 1);
    assert_eq!(rule.id, "databricks-pat");
    assert_eq!(rule.pattern, r"\bdapi[0-9a-f]{32}\b");
    assert_eq!(rule.mask, "dapi****");
    assert_eq!(rule.window, 300);
    assert_eq!(
        rule.keywords,
        [
            "databricks",
            "dapi",
            "personal access token",
            "PAT",
            "workspace",
            "databricks token",
            "access token",
            "bearer",
            "api key",
            "api_key",
            "apikey",
            "access key",
            "auth token",
            "authorization",
            "conn str",
            "connection string",
            "connectionstring",
            "cookie",
            "credential",
            "database",
        ]
    );
    assert_eq!(
        rule.exclusions,
        ["template", "example", "placeholder", "sample"]
    );
    assert!(rule.allow.is_empty());
}

#[test]
fn check_config_prints_the_rules() {
    let path = write_config(
        "check",
        "rules:\n  - id: databricks-pat\n    pattern: '\\bdapi[0-9a-f]{32}\\b'\n    mask: 'dapi****'\n  - id: aws\n    pattern: '\\bAKIA[0-9A-Z]{16}\\b'\n",
    );
    let output = binary().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "{}: OK, 2 rule(s)\nID              PATTERN               MASK\ndatabricks-pat  \\bdapi[0-9a-f]{{32}}\\b  dapi****\naws             \\bAKIA[0-9A-Z]{{16}}\\b  ****\n",
            path.display()
        )
    );
}

#[test]
fn yaml_syntax_errors_give_file_line_and_column() {
    let path = write_config("syntax", "rules:\n  - id: a\n    pattern: 'unterminated\n");
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:4:1: found unexpected end of stream at line 4 column 1, while scanning a quoted scalar at line 3 column 14\n",
            path.display()
        )
    );
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let path = write_config(
        "unknown",
        "rules:\n  - id: a\n    pattern: x\n    masks: y\n",
    );
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:4:5: rules[0]: unknown field `masks`, expected one of `id`, `pattern`, `mask`, `window`, `keywords`, `exclusions`, `allow`\n",
            path.display()
        )
    );
    let path = write_config("unknown-top", "output: '-'\ninput: ['-']\n");
    let message = refused(&path);
    assert!(
        message.contains(":2:1: unknown field `input`, expected one of"),
        "{message}"
    );
}

#[test]
fn missing_id_or_pattern() {
    let path = write_config("no-id", "rules:\n  - pattern: x\n");
    assert!(refused(&path).contains("rules[0]: missing field `id`"));
    let path = write_config("no-pattern", "rules:\n  - id: a\n    mask: m\n");
    assert!(refused(&path).contains("rules[0]: missing field `pattern`"));
}

#[test]
fn duplicate_rule_ids_point_at_the_second() {
    let path = write_config(
        "duplicate",
        "rules:\n  - id: a\n    pattern: x\n  - id: b\n    pattern: y\n  - id: a\n    pattern: z\n",
    );
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:6:9: rule 'a': duplicate rule id\n",
            path.display()
        )
    );
}

#[test]
fn invalid_regex_names_the_rule_and_the_engine_message() {
    let path = write_config(
        "regex",
        "rules:\n  - id: ok\n    pattern: x\n  - id: broken\n    pattern: 'a(b'\n",
    );
    let message = refused(&path);
    assert!(
        message.starts_with(&format!(
            "logredact: {}:5:14: rule 'broken': invalid pattern: ",
            path.display()
        )),
        "{message}"
    );
    assert!(message.contains("unclosed group"), "{message}");
}

#[test]
fn unbounded_too_long_and_empty_patterns_are_refused() {
    for (pattern, expected) in [
        (
            "key=.*",
            "rule 'r': the pattern can match unboundedly long text",
        ),
        (
            "[a-z]+",
            "rule 'r': the pattern can match unboundedly long text",
        ),
        (
            "x{300}",
            "rule 'r': the pattern can match up to 300 bytes; the limit is 256",
        ),
        (
            "a{1,200}b{1,100}",
            "rule 'r': the pattern can match up to 300 bytes; the limit is 256",
        ),
        ("a?", "rule 'r': the pattern can match the empty string"),
        ("(?u:\\b)x", "rule 'r': Unicode word boundaries"),
    ] {
        let path = write_config(
            "bounds",
            &format!("rules:\n  - id: r\n    pattern: '{pattern}'\n"),
        );
        let message = refused(&path);
        assert!(
            message.starts_with(&format!("logredact: {}:3:14: {expected}", path.display())),
            "{pattern}: {message}"
        );
    }
    // Exactly 256 bytes is allowed.
    let path = write_config("bounds-ok", "rules:\n  - id: r\n    pattern: 'x{256}'\n");
    assert!(
        binary()
            .arg("check-config")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn masks_may_be_empty_but_not_name_unknown_placeholders() {
    let path = write_config(
        "empty-mask",
        "rules:\n  - id: r\n    pattern: 'secret'\n    mask: ''\n",
    );
    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a secret b")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, b"a  b");

    let path = write_config(
        "bad-mask",
        "rules:\n  - id: r\n    pattern: 'secret'\n    mask: 'x{token}'\n",
    );
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:4:11: rule 'r': unknown placeholder {{token}} in mask (the only placeholder is {{fingerprint}})\n",
            path.display()
        )
    );
}

#[test]
fn other_refusals() {
    for (text, expected) in [
        ("rules: []\n", ":1:8: no rules"),
        (
            "output: 'udp://x:1'\n",
            ":1:9: output: unknown output 'udp://x:1'",
        ),
        (
            "inputs: ['-', 'tcp://h:port']\n",
            ":1:15: inputs: 'tcp://h:port': 'port' is not a port number",
        ),
        (
            "admin: { listen: 'nowhere' }\n",
            ":1:18: admin.listen: 'nowhere': expected HOST:PORT",
        ),
        (
            "limits: { max_connections: 0 }\n",
            ":1:28: limits.max_connections must be at least 1",
        ),
        (
            "inputs: [{ follow: /var/log/app.log, rotated: 'app.log.1' }]\n",
            ":1:10: inputs: rotated: 'app.log.1': one '*' is needed, for what varies between generations",
        ),
        (
            "limits: { line_hold_secs: 0 }\n",
            ":1:27: limits.line_hold_secs must be more than 0 and at most 3600",
        ),
        (
            "limits: { max_files: 0 }\n",
            ":1:22: limits.max_files must be at least 1",
        ),
        (
            "inputs: ['follow:/var/log/pods/[x/*.log']\n",
            ":1:10: inputs: 'follow:/var/log/pods/[x/*.log': not a valid pattern: unclosed character class; missing ']'",
        ),
        (
            "rules:\n  - id: r\n    pattern: x\n    window: 5000\n",
            ":4:13: rule 'r': window 5000 is out of range",
        ),
        (
            "rules:\n  - id: r\n    pattern: x\n    keywords: [a]\n    exclusions: [b, '']\n",
            ":5:21: rule 'r': empty keyword",
        ),
        (
            "rules:\n  - id: r\n    pattern: x\n    allow: [ok, 'fingerprint:zz']\n",
            ":4:17: rule 'r': allow-list entry #2: a fingerprint is 16 hex digits",
        ),
        (
            "rules:\n  - id: r\n    pattern: x\n    allow: ['fingerprint:0011223344556677']\n",
            ":4:13: rule 'r': allow-list fingerprints need a fixed fingerprint key",
        ),
        (
            "include: [missing.yaml]\n",
            ":1:11: cannot read included rule pack",
        ),
    ] {
        let path = write_config("other", text);
        let message = refused(&path);
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    let missing = binary()
        .args(["--config", "/nonexistent/logredact.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8(missing.stderr).unwrap().starts_with(
        "logredact: /nonexistent/logredact.yaml: cannot read the configuration: No such file or directory"
    ));
}

#[test]
fn an_empty_file_means_every_default() {
    let path = write_config("empty", "# nothing here\n");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.rules, Config::builtin().rules);
}

#[test]
fn included_packs_follow_the_default_rule_and_their_errors_name_the_pack() {
    let dir = scratch("include");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/pack.yaml"),
        "rules:\n  - id: word\n    pattern: '\\bsecretword\\b'\n    mask: '<w>'\n",
    )
    .unwrap();
    std::fs::write(dir.join("logredact.yaml"), "include: [rules/pack.yaml]\n").unwrap();
    let config = Config::load(&dir.join("logredact.yaml")).unwrap();
    let ids: Vec<&str> = config.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["databricks-pat", "word"]);
    let token = TokenGen::new(50).token();
    let mut child = binary()
        .arg("--config")
        .arg(dir.join("logredact.yaml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{token} secretword\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.stdout, b"dapi**** <w>\n");

    std::fs::write(
        dir.join("rules/pack.yaml"),
        "rules:\n  - id: word\n    pattern: '\\bsecretword\\b'\n    colour: red\n",
    )
    .unwrap();
    let message = refused(&dir.join("logredact.yaml"));
    assert!(
        message.starts_with(&format!(
            "logredact: {}:4:5: rules[0]: unknown field `colour`",
            dir.join("rules/pack.yaml").display()
        )),
        "{message}"
    );
}

#[test]
fn semantic_errors_point_at_the_line_and_column_of_the_value() {
    // Flow style, keys in any order, a rule pack: the column is the value's.
    let path = write_config(
        "columns",
        "rules:\n  - id: a\n    pattern: x\n  - {mask: m, window: 9999, id: b, pattern: y}\n  - pattern: '[a-z]+'\n    id: c\n",
    );
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:4:23: rule 'b': window 9999 is out of range (0 to 4096 characters)\n",
            path.display()
        )
    );
    let path = write_config(
        "columns",
        "rules:\n  - id: a\n    pattern: x\n  - pattern: '[a-z]+'\n    id: c\n",
    );
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:4:14: rule 'c': the pattern can match unboundedly long text; bound every repetition (e.g. {{1,64}} instead of + or *) so that a match is at most 256 bytes\n",
            path.display()
        )
    );
    let dir = scratch("columns-pack");
    std::fs::write(
        dir.join("pack.yaml"),
        "# a pack\nrules:\n  - id: databricks-pat\n    pattern: y\n",
    )
    .unwrap();
    std::fs::write(dir.join("logredact.yaml"), "include: [pack.yaml]\n").unwrap();
    assert_eq!(
        refused(&dir.join("logredact.yaml")),
        format!(
            "logredact: {}:3:9: rule 'databricks-pat': duplicate rule id\n",
            dir.join("pack.yaml").display()
        )
    );
}

#[test]
fn text_anchors_are_refused_with_the_line_anchors_to_use_instead() {
    for pattern in [
        "^abc",
        "\\Aabc",
        "abc$",
        "abc\\z",
        "x(?:^abc|abc)",
        "(?m:^)a(?-m:$)",
    ] {
        let path = write_config(
            "anchors",
            &format!("rules:\n  - id: r\n    pattern: '{pattern}'\n"),
        );
        assert_eq!(
            refused(&path),
            format!(
                "logredact: {}:3:14: rule 'r': the pattern is anchored at the start or end of the text (^, $, \\A or \\z), which a stream does not have; use (?m)^ and (?m)$ for the start and end of a line\n",
                path.display()
            ),
            "{pattern}"
        );
    }
    // The line anchors work on every line of a stream.
    for pattern in ["(?m)^abc", "(?m)abc$"] {
        let path = write_config(
            "line-anchors",
            &format!("rules:\n  - id: r\n    pattern: '{pattern}'\n"),
        );
        let mut command = binary();
        command.arg("--config").arg(&path);
        let output = output_with_stdin(command, b"x\nabc\nabc\n");
        assert_eq!(output.status.code(), Some(0), "{pattern}");
        assert_eq!(output.stdout, b"x\n****\n****\n", "{pattern}");
        assert_eq!(String::from_utf8(output.stderr).unwrap(), "", "{pattern}");
    }
}

#[test]
fn an_empty_input_list_and_an_empty_audit_path_are_refused() {
    let path = write_config("no-inputs", "output: '-'\ninputs: []\n");
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:2:9: inputs: at least one input is needed (- is standard input)\n",
            path.display()
        )
    );
    let path = write_config("empty-audit", "audit: { path: '' }\n");
    assert_eq!(
        refused(&path),
        format!(
            "logredact: {}:1:16: audit.path: the audit path is empty\n",
            path.display()
        )
    );
}

/// Runs logredact with `args` and a short stdin; its exit status and stderr.
fn usage_error(args: &[&str]) -> (Option<i32>, String) {
    let mut command = binary();
    command.args(args);
    let output = output_with_stdin(command, b"x\n");
    assert!(output.stdout.is_empty(), "{args:?}");
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn command_line_values_are_checked_as_the_file_values_are() {
    for (args, expected) in [
        (
            ["--shutdown-grace", "1e20"],
            "error: invalid value '1e20' for '--shutdown-grace <SECS>': '1e20' is not a number of seconds",
        ),
        (
            ["--admin", "127.0.0.1:99999"],
            "error: invalid value '127.0.0.1:99999' for '--admin <ADDR>': '127.0.0.1:99999': '99999' is not a port number",
        ),
        (
            ["--admin", "notaddr"],
            "error: invalid value 'notaddr' for '--admin <ADDR>': 'notaddr': expected HOST:PORT",
        ),
        (
            ["--audit", ""],
            "error: invalid value '' for '--audit <PATH>': the audit path is empty",
        ),
    ] {
        assert_eq!(
            usage_error(&args),
            (
                Some(2),
                format!("{expected}\n\nFor more information, try '--help'.\n")
            ),
            "{args:?}"
        );
    }
}

/// Issue 14, item 8: the parser's time grows with the square of the nesting
/// depth; a configuration nested deeper than 64 is refused before parsing,
/// at the first bracket too deep, with status 2. Brackets inside quotes and
/// comments do not count.
#[test]
fn nesting_too_deep_is_refused_before_parsing() {
    let dir = scratch("nesting");
    let deep = dir.join("deep.yaml");
    std::fs::write(&deep, format!("rules: {}\n", "[".repeat(100_000))).unwrap();
    let output = binary()
        .args(["check-config", deep.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "logredact: {}:1:72: collections nested more than 64 deep\n",
            deep.display()
        )
    );
    // Brackets in quoted text and comments are text.
    let fine = dir.join("fine.yaml");
    let shipped = read(&repo_path("config/logredact.yaml"));
    std::fs::write(
        &fine,
        format!(
            "{shipped}# {}\n{}",
            "[".repeat(100),
            "audit: { path: 'a[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[.jsonl' }\n"
        ),
    )
    .unwrap();
    let output = binary()
        .args(["check-config", fine.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The variables the interpolation tests use: `env` set, every other one
/// removed, whatever the environment of the test run holds.
fn with_test_env(
    mut command: std::process::Command,
    env: &[(&str, &OsStr)],
) -> std::process::Command {
    for name in [
        "LOGREDACT_TEST_DIR",
        "LOGREDACT_TEST_UNSET",
        "LOGREDACT_TEST_MASK",
        "LOGREDACT_TEST_OUT",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Issue 18, item 2: `${VAR}`, `${VAR:-default}` and `$$` in the values of
/// the file and of its rule packs; a lone `$` (a pattern's anchor) is text.
#[test]
fn environment_variables_are_interpolated_in_values_and_packs() {
    let dir = scratch("interpolate");
    std::fs::write(
        dir.join("pack.yaml"),
        "rules:\n  - id: word\n    pattern: 'secretword'\n    mask: '<${LOGREDACT_TEST_MASK}>'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("logredact.yaml"),
        concat!(
            "rules:\n",
            "  - id: databricks-pat\n    pattern: '\\bdapi[0-9a-f]{32}\\b'\n    mask: '$$MASK$$'\n",
            "  - id: eol\n    pattern: '(?m)tail$'\n    mask: 'T$'\n",
            "include: ['${LOGREDACT_TEST_DIR}/pack.yaml']\n",
            "output: 'file:${LOGREDACT_TEST_DIR}/out.log'\n",
            "audit: { path: \"${LOGREDACT_TEST_DIR}/audit-${LOGREDACT_TEST_UNSET:-default}.jsonl\" }\n",
        ),
    )
    .unwrap();
    let token = TokenGen::new(18).token();
    let mut command = with_test_env(
        binary(),
        &[
            ("LOGREDACT_TEST_DIR", dir.as_os_str()),
            ("LOGREDACT_TEST_MASK", OsStr::new("w")),
        ],
    );
    command.arg("--config").arg(dir.join("logredact.yaml"));
    let output = output_with_stdin(command, format!("a {token} secretword tail\n").as_bytes());
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    assert_eq!(read(&dir.join("out.log")), "a $MASK$ <w> T$\n");
    let audit = read(&dir.join("audit-default.jsonl"));
    assert_eq!(audit.lines().count(), 3, "{audit}");
}

/// Issue 18, item 2: each way a variable can be wrong is a configuration
/// error at the value's line and column, exit status 2, before any input.
#[test]
fn interpolation_errors_name_the_file_line_column_and_variable() {
    let unset = "environment variable LOGREDACT_TEST_UNSET is not set and has no default (${LOGREDACT_TEST_UNSET:-DEFAULT} gives one)";
    for (text, expected) in [
        (
            "output: 'file:${LOGREDACT_TEST_UNSET}/out.log'\n".to_string(),
            format!("1:9: output: {unset}"),
        ),
        (
            "rules:\n  - id: r\n    pattern: x\n    keywords: [a, \"${LOGREDACT_TEST_UNSET}\"]\n".into(),
            format!("4:19: rules[0].keywords[1]: {unset}"),
        ),
        (
            "audit: { path: '${LOGREDACT_TEST_DIR/audit.jsonl' }\n".into(),
            "1:16: audit.path: '${' is not closed by '}' (write $$ for a literal $)".into(),
        ),
        (
            "state_dir: '/var/lib/${}'\n".into(),
            "1:12: state_dir: '${}' names no variable".into(),
        ),
        (
            "inputs: ['file:${LOGREDACT-DIR}/a.log']\n".into(),
            "1:10: inputs[0]: 'LOGREDACT-DIR' is not a variable name (letters, digits and _, not starting with a digit)".into(),
        ),
        (
            "admin: { listen: '${1ADDR:-127.0.0.1:9102}' }\n".into(),
            "1:18: admin.listen: '1ADDR' is not a variable name (letters, digits and _, not starting with a digit)".into(),
        ),
    ] {
        let path = write_config("interpolate-errors", &text);
        assert_eq!(
            refused(&path),
            format!("logredact: {}:{expected}\n", path.display()),
            "{text}"
        );
    }
    // A variable set to bytes that are not UTF-8.
    let path = write_config("interpolate-bytes", "output: '${LOGREDACT_TEST_OUT}'\n");
    let bytes = std::os::unix::ffi::OsStrExt::from_bytes(&b"file:\xff"[..]);
    assert_eq!(
        refused_with_env(&path, &[("LOGREDACT_TEST_OUT", bytes)]),
        format!(
            "logredact: {}:1:9: output: environment variable LOGREDACT_TEST_OUT is not valid UTF-8\n",
            path.display()
        )
    );
    // In an included pack: the pack's file, line and column.
    let dir = scratch("interpolate-pack");
    std::fs::write(
        dir.join("pack.yaml"),
        "rules:\n  - id: word\n    pattern: '${LOGREDACT_TEST_UNSET}'\n",
    )
    .unwrap();
    std::fs::write(dir.join("logredact.yaml"), "include: [pack.yaml]\n").unwrap();
    assert_eq!(
        refused(&dir.join("logredact.yaml")),
        format!(
            "logredact: {}:3:14: rules[0].pattern: {unset}\n",
            dir.join("pack.yaml").display()
        )
    );
}

/// Issue 18, item 2: what a variable holds may be a secret; an error about
/// the value shows `${NAME}` where the value would be, and never the value.
#[test]
fn an_error_never_shows_what_a_variable_holds() {
    let token = TokenGen::new(181).token();
    let value = format!("udp://{token}-collector:5170");
    let path = write_config("interpolate-secret", "output: '${LOGREDACT_TEST_OUT}'\n");
    let message = refused_with_env(&path, &[("LOGREDACT_TEST_OUT", OsStr::new(&value))]);
    assert_eq!(
        message,
        format!(
            "logredact: {}:1:9: output: unknown output '${{LOGREDACT_TEST_OUT}}': expected -, file:PATH, tcp://HOST:PORT, tls://HOST:PORT, forward://HOST:PORT or forward+tls://HOST:PORT\n",
            path.display()
        )
    );
}

/// `logredact check-config PATH ARGS...`: (exit status, stdout, stderr).
fn check_deployment(path: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = binary()
        .arg("check-config")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Issue 18, item 3: with a run's flags, `check-config` checks what that run
/// needs at its start, and creates nothing doing so.
#[test]
fn check_config_checks_a_usable_deployment_without_creating_anything() {
    let dir = scratch("deployment-ok");
    let config = write_config(
        "deployment-ok-config",
        "rules:\n  - id: r\n    pattern: x\n",
    );
    let admin = format!("127.0.0.1:{}", free_port());
    let state = dir.join("state/sub");
    let audit = dir.join("audit.jsonl");
    let (status, stdout, stderr) = check_deployment(
        &config,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--audit",
            audit.to_str().unwrap(),
            "--admin",
            &admin,
            "--output",
            "tcp://localhost:5170",
        ],
    );
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: OK, 1 rule(s)\nID  PATTERN  MASK\nr   x        ****\ndeployment: state directory {}: OK\ndeployment: audit file {}: OK\ndeployment: admin address {admin}: OK\ndeployment: output tcp://localhost:5170: OK\n",
            config.display(),
            state.display(),
            audit.display()
        )
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "created a file"
    );
}

/// Issue 18, item 3: each problem with its reason, all of them, exit 2. The
/// unwritable places are under a regular file, which fails for root too
/// (tests may run as root, for whom permission bits do not count).
#[test]
fn check_config_reports_what_would_stop_the_run() {
    let dir = scratch("deployment-bad");
    let file = dir.join("file");
    std::fs::write(&file, "").unwrap();
    let config = write_config(
        "deployment-bad-config",
        "rules:\n  - id: r\n    pattern: x\n",
    );
    let taken = std::net::TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let host = "collector.logredact.invalid:5170";
    let unresolved = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    let (status, stdout, stderr) = check_deployment(
        &config,
        &[
            "--state-dir",
            file.join("state").to_str().unwrap(),
            "--audit",
            file.join("audit.jsonl").to_str().unwrap(),
            "--admin",
            &admin,
            "--input",
            &format!("tcp://{admin}"),
            "--output",
            &format!("tcp://{host}"),
        ],
    );
    assert_eq!(status, Some(2));
    assert_eq!(stdout, "");
    let file = file.display();
    assert_eq!(
        stderr,
        format!(
            "logredact: state directory {file}/state: cannot create it: {file} is not a directory\n\
             logredact: audit file {file}/audit.jsonl: cannot open it to append: Not a directory (os error 20)\n\
             logredact: admin address {admin}: cannot listen there: Address already in use (os error 98)\n\
             logredact: input tcp://{admin}: cannot listen there: Address already in use (os error 98)\n\
             logredact: output tcp://{host}: the host does not resolve: {unresolved}\n"
        )
    );
    // A state directory that is a file, an audit file in a missing directory.
    let (status, _, stderr) = check_deployment(
        &config,
        &[
            "--state-dir",
            &file.to_string(),
            "--audit",
            &format!("{}/missing/audit.jsonl", dir.display()),
        ],
    );
    assert_eq!(status, Some(2));
    assert_eq!(
        stderr,
        format!(
            "logredact: state directory {file}: it is not a directory\n\
             logredact: audit file {0}/missing/audit.jsonl: cannot create it: {0}/missing: No such file or directory (os error 2)\n",
            dir.display()
        )
    );
    // Permission bits, where they count (not for root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let read_only = dir.join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
        std::fs::set_permissions(&read_only, permissions).unwrap();
        let (status, _, stderr) = check_deployment(
            &config,
            &[
                "--state-dir",
                read_only.to_str().unwrap(),
                "--audit",
                read_only.join("audit.jsonl").to_str().unwrap(),
            ],
        );
        assert_eq!(status, Some(2));
        let read_only = read_only.display();
        assert_eq!(
            stderr,
            format!(
                "logredact: state directory {read_only}: cannot write in it: Permission denied (os error 13)\n\
                 logredact: audit file {read_only}/audit.jsonl: cannot create it in {read_only}: Permission denied (os error 13)\n"
            )
        );
    }
}

/// Issue 18, item 3: without a run's flags `check-config` checks the file
/// alone (a ConfigMap is checked where it is written, not in its pod);
/// `--deployment` checks the file's own deployment values.
#[test]
fn check_config_checks_the_deployment_only_when_asked() {
    let dir = scratch("deployment-asked");
    std::fs::write(dir.join("file"), "").unwrap();
    let config = write_config(
        "deployment-asked-config",
        &format!(
            "rules:\n  - id: r\n    pattern: x\nstate_dir: '{}/file/state'\n",
            dir.display()
        ),
    );
    let (status, _, stderr) = check_deployment(&config, &[]);
    assert_eq!(status, Some(0), "{stderr}");
    let (status, _, stderr) = check_deployment(&config, &["--deployment"]);
    assert_eq!(status, Some(2));
    assert_eq!(
        stderr,
        format!(
            "logredact: state directory {0}/file/state: cannot create it: {0}/file is not a directory\n",
            dir.display()
        )
    );
}
