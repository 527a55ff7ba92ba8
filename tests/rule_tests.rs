//! `logredact test`: the shipped configuration and rule packs carry tests
//! for every rule and pass them; a wrong expectation is reported with a diff
//! and exit status 1, without the test's input; a malformed test is a
//! configuration error (file, line and column, exit status 2).

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// `logredact test ARGS...`, run in `dir`.
fn logredact_test(dir: &Path, args: &[&str]) -> Output {
    binary()
        .current_dir(dir)
        .arg("test")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_shipped_configurations_and_packs_pass_their_tests_and_test_every_rule() {
    let output = logredact_test(
        &repo_path(""),
        &[
            "config/logredact.yaml",
            "config/logredact-json.yaml",
            "config/rules/json-escaped.yaml",
            "config/rules/common-credentials.yaml",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    // No "no test expects a detection of ...": every rule has a test.
    assert_eq!(
        stdout(&output),
        "config/logredact.yaml: 8 test(s) passed, each whole and one byte at a time\n\
         config/logredact-json.yaml: 18 test(s) passed, each whole and one byte at a time\n\
         config/rules/json-escaped.yaml: 8 test(s) passed, each whole and one byte at a time\n\
         config/rules/common-credentials.yaml: 12 test(s) passed, each whole and one byte at a time\n"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn without_a_file_the_built_in_configuration_is_tested() {
    let output = logredact_test(&repo_path(""), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    assert_eq!(
        stdout(&output),
        "built-in default configuration: 8 test(s) passed, each whole and one byte at a time\n"
    );
}

#[test]
fn the_credential_pack_passes_its_tests_behind_the_built_in_rule() {
    let dir = scratch("behind-built-in");
    let pack = repo_path("config/rules/common-credentials.yaml");
    std::fs::write(
        dir.join("app.yaml"),
        format!("include: ['{}']\n", pack.display()),
    )
    .unwrap();
    let output = logredact_test(&dir, &["app.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", transcript(&output));
    assert_eq!(
        stdout(&output),
        "app.yaml: 20 test(s) passed, each whole and one byte at a time\n"
    );
}

#[test]
fn committed_configuration_holds_no_token_but_the_documentation_placeholders() {
    let mut pending = vec![repo_path("config")];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            files += 1;
            assert_only_placeholder_tokens(&path, &std::fs::read(&path).unwrap());
        }
    }
    assert!(files >= 4, "configuration files: {files}");
}

/// A pack with one rule for the test token shape, and `tests` (YAML) after.
fn pack(dir: &Path, tests: &str) {
    let text = format!(
        "rules:\n  - id: pat\n    pattern: '\\bdapi[0-9a-f]{{32}}\\b'\n    mask: 'dapi****'\n    keywords: [bearer]\n  - id: word\n    pattern: '\\bsecret-[a-z]{{4}}\\b'\ntests:\n{tests}"
    );
    std::fs::write(dir.join("pack.yaml"), text).unwrap();
}

#[test]
fn a_wrong_expectation_is_a_diff_and_exit_status_1() {
    let dir = scratch("wrong");
    let token = TokenGen::new(18).token();
    pack(
        &dir,
        &format!(
            "  - name: right
    input: 'bearer {token}'
    output: 'bearer dapi****'
    detections: [{{ rule: pat, confidence: high }}]
  - name: wrong output and confidence
    input: \"a\\nbearer dapi{{{{hex:32}}}} x\\nsecret-abcd\\n\"
    output: \"a\\nbearer dapi****\\nsecret-abcd\\n\"
    detections: [{{ rule: pat, confidence: medium }}]
  - name: a token the rules do not mask
    input: 'bearer {token}x'
    output: 'bearer dapi****'
"
        ),
    );
    let output = logredact_test(&dir, &["pack.yaml"]);
    assert_eq!(output.status.code(), Some(1), "{}", transcript(&output));
    // The input is never shown: the got output is the rules' redaction,
    // with values generated at test time shown as their placeholders, and
    // masked like every message (the last test's token, which its rules miss).
    assert_eq!(
        stdout(&output),
        "pack.yaml: test 'wrong output and confidence' (pack.yaml:13:5) FAILED, whole input and one byte at a time:
--- expected output
+++ got output
 a
-bearer dapi****
-secret-abcd
+bearer dapi**** x
+****
detections expected: pat medium
detections got:      pat high, word medium
pack.yaml: test 'a token the rules do not mask' (pack.yaml:17:5) FAILED, whole input and one byte at a time:
--- expected output
+++ got output
-bearer dapi****
\\ No newline at end of output
+bearer dapi****x
\\ No newline at end of output
pack.yaml: 2 of 3 test(s) failed
"
    );
    assert_eq!(stderr(&output), "logredact: 2 of 3 rule test(s) failed\n");
    assert!(!stdout(&output).contains(&token[4..]));
}

#[test]
fn a_malformed_test_is_a_configuration_error_with_its_position() {
    let dir = scratch("malformed");
    for (tests, message) in [
        (
            "  - name: t\n    input: x\n    ouput: x\n",
            "pack.yaml:11:5: tests[0]: unknown field `ouput`, expected one of `name`, `input`, `output`, `detections`",
        ),
        (
            "  - name: t\n    input: x\n    output: x\n    detections: [{ rule: pat, confidence: certain }]\n",
            "pack.yaml:12:43: tests[0].detections[0].confidence: unknown variant `certain`, expected one of `low`, `medium`, `high`",
        ),
        (
            "  - name: t\n    input: x\n    output: x\n    detections: [{ rule: jwt, confidence: low }]\n",
            "pack.yaml:12:26: tests: 't': no rule has the id 'jwt'",
        ),
        (
            "  - name: t\n    input: 'dapi{{hex:32'\n    output: x\n",
            "pack.yaml:10:12: tests: 't': input: '{{hex' is not closed by '}}'",
        ),
        (
            "  - name: t\n    input: x\n    output: x\n  - name: t\n    input: y\n    output: y\n",
            "pack.yaml:12:11: tests: two tests are named 't'",
        ),
    ] {
        pack(&dir, tests);
        let output = logredact_test(&dir, &["pack.yaml"]);
        assert_eq!(output.status.code(), Some(2), "{}", transcript(&output));
        assert_eq!(stdout(&output), "");
        assert_eq!(stderr(&output), format!("logredact: {message}\n"));
    }
}
