//! Rule tests: the `tests:` of a configuration file or rule pack, run by
//! `logredact test`. Each test gives an input text, the output expected and,
//! optionally, the detections expected (rule and confidence, in order). The
//! input is scanned by the same [`Scanner`] every stream uses, twice: in one
//! piece and one byte at a time; both must give exactly what is expected.
//!
//! A report never shows a test's input. It shows the outputs — the expected
//! one as written, the one got as the rules redacted it — with values
//! generated at test time shown as their placeholders (see [`generate`]) and
//! every line masked like all of logredact's messages.

mod diff;
pub(crate) mod generate;

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use crate::scan::detection::{Confidence, Detection};
use crate::scan::rule::RuleSet;
use crate::scan::scanner::{DetectionMode, ScanSink, Scanner};
use crate::scrub::scrub;
use diff::DiffLine;
use generate::Generated;

/// One test of a rule pack or configuration.
#[derive(Clone)]
pub struct RuleTest {
    /// Its name, unique in its file.
    pub name: String,
    /// Where it is written: `FILE:LINE:COLUMN` (or `FILE`).
    pub defined_at: String,
    /// The input, with `{{KIND:N}}` placeholders for generated values.
    pub(crate) input: String,
    /// The output expected, likewise.
    pub(crate) output: String,
    /// The detections expected, in order; `None` checks none.
    pub(crate) detections: Option<Vec<ExpectedDetection>>,
}

impl fmt::Debug for RuleTest {
    // The input may hold a token: only the name and place are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleTest")
            .field("name", &self.name)
            .field("defined_at", &self.defined_at)
            .finish_non_exhaustive()
    }
}

impl RuleTest {
    /// The rules whose detections the test expects.
    pub fn expected_rules(&self) -> impl Iterator<Item = &str> {
        self.detections
            .iter()
            .flatten()
            .map(|detection| detection.rule.as_str())
    }
}

/// A detection a test expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDetection {
    /// The rule's id.
    pub rule: String,
    /// Its confidence.
    pub confidence: Confidence,
}

/// How the input is fed to the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feeding {
    /// The whole input in one chunk.
    Whole,
    /// One byte per chunk.
    ByteAtATime,
}

impl Feeding {
    const ALL: [Feeding; 2] = [Feeding::Whole, Feeding::ByteAtATime];

    fn label(self) -> &'static str {
        match self {
            Feeding::Whole => "whole input",
            Feeding::ByteAtATime => "one byte at a time",
        }
    }
}

/// What one scan of a test's input gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Got {
    output: Vec<u8>,
    detections: Vec<(Arc<str>, Confidence)>,
}

impl ScanSink for Got {
    fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    fn detection(&mut self, detection: Detection) {
        self.detections.push((detection.rule, detection.confidence));
    }
}

/// Scans `input` with `rules`, fed as `feeding` says.
fn scan(rules: &Arc<RuleSet>, input: &[u8], feeding: Feeding) -> Got {
    let mut scanner = Scanner::new(Arc::clone(rules), DetectionMode::Classify);
    let mut got = Got::default();
    match feeding {
        Feeding::Whole => scanner.feed(input, &mut got),
        Feeding::ByteAtATime => {
            for byte in input.chunks(1) {
                scanner.feed(byte, &mut got);
            }
        }
    }
    scanner.finish(&mut got);
    got
}

/// A test that failed: what was got, by the feedings that got it.
struct TestFailure {
    name: String,
    defined_at: String,
    /// The expected output, expanded.
    expected_output: String,
    expected_detections: Option<Vec<ExpectedDetection>>,
    /// Each wrong result, with the feedings that gave it.
    wrong: Vec<(Vec<Feeding>, Got)>,
    generated: Generated,
}

/// The outcome of a file's tests.
pub struct Outcome {
    /// Tests run.
    pub total: usize,
    failures: Vec<TestFailure>,
    /// Rules that no test expects a detection of.
    pub untested_rules: Vec<String>,
}

impl Outcome {
    /// Tests that failed.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }
}

/// Runs `tests` against `rules`.
pub fn run(rules: &Arc<RuleSet>, tests: &[RuleTest]) -> Outcome {
    let failures = tests
        .iter()
        .filter_map(|test| {
            let mut generated = Generated::default();
            let input = generated.expand(&test.name, &test.input);
            let expected_output = generated.expand(&test.name, &test.output);
            let results =
                Feeding::ALL.map(|feeding| (feeding, scan(rules, input.as_bytes(), feeding)));
            judge(test, expected_output, generated, &results)
        })
        .collect();
    let untested_rules = rules
        .specs()
        .iter()
        .map(|spec| spec.id.clone())
        .filter(|id| !tests.iter().any(|t| t.expected_rules().any(|r| r == id)))
        .collect();
    Outcome {
        total: tests.len(),
        failures,
        untested_rules,
    }
}

/// The failure of `test`, if any of `results` is not what it expects.
fn judge(
    test: &RuleTest,
    expected_output: String,
    generated: Generated,
    results: &[(Feeding, Got)],
) -> Option<TestFailure> {
    let is_right = |got: &Got| {
        got.output == expected_output.as_bytes()
            && test.detections.as_ref().is_none_or(|expected| {
                expected.len() == got.detections.len()
                    && expected
                        .iter()
                        .zip(&got.detections)
                        .all(|(e, (rule, c))| e.rule == rule.as_ref() && e.confidence == *c)
            })
    };
    let mut wrong: Vec<(Vec<Feeding>, Got)> = Vec::new();
    for (feeding, got) in results {
        if is_right(got) {
            continue;
        }
        match wrong.iter_mut().find(|(_, other)| other == got) {
            Some((feedings, _)) => feedings.push(*feeding),
            None => wrong.push((vec![*feeding], got.clone())),
        }
    }
    (!wrong.is_empty()).then(|| TestFailure {
        name: test.name.clone(),
        defined_at: test.defined_at.clone(),
        expected_output,
        expected_detections: test.detections.clone(),
        wrong,
        generated,
    })
}

impl Outcome {
    /// Writes the report of the tests of `file` (as it is to be shown):
    /// each failure with its diff, then one summary line.
    pub fn write_report(&self, file: &str, out: &mut impl Write) -> io::Result<()> {
        let file = scrub(file);
        for failure in &self.failures {
            failure.write(&file, out)?;
        }
        if self.total == 0 {
            return writeln!(out, "{file}: no tests");
        }
        if !self.failures.is_empty() {
            return writeln!(
                out,
                "{file}: {} of {} test(s) failed",
                self.failures.len(),
                self.total
            );
        }
        write!(
            out,
            "{file}: {} test(s) passed, each whole and one byte at a time",
            self.total
        )?;
        if !self.untested_rules.is_empty() {
            let ids: Vec<String> = self.untested_rules.iter().map(|id| scrub(id)).collect();
            write!(out, "; no test expects a detection of {}", ids.join(", "))?;
        }
        writeln!(out)
    }
}

impl TestFailure {
    fn write(&self, file: &str, out: &mut impl Write) -> io::Result<()> {
        for (feedings, got) in &self.wrong {
            let how: Vec<&str> = feedings.iter().map(|f| f.label()).collect();
            writeln!(
                out,
                "{file}: test '{}' ({}) FAILED, {}:",
                scrub(&self.name),
                scrub(&self.defined_at),
                how.join(" and ")
            )?;
            let got_output = String::from_utf8_lossy(&got.output);
            if got_output != self.expected_output {
                writeln!(out, "--- expected output")?;
                writeln!(out, "+++ got output")?;
                for line in diff::diff(&self.expected_output, &got_output) {
                    let (sign, text) = match line {
                        DiffLine::Same(text) => (' ', text),
                        DiffLine::Expected(text) => ('-', text),
                        DiffLine::Got(text) => ('+', text),
                    };
                    writeln!(out, "{sign}{}", self.shown(text))?;
                    if !text.ends_with('\n') {
                        writeln!(out, "\\ No newline at end of output")?;
                    }
                }
            }
            if let Some(expected) = &self.expected_detections {
                let expected: Vec<String> = expected
                    .iter()
                    .map(|d| format!("{} {}", d.rule, d.confidence))
                    .collect();
                let got: Vec<String> = got
                    .detections
                    .iter()
                    .map(|(rule, confidence)| format!("{rule} {confidence}"))
                    .collect();
                if expected != got {
                    let list = |items: &[String]| match items.is_empty() {
                        true => "(none)".to_string(),
                        false => scrub(&items.join(", ")),
                    };
                    writeln!(out, "detections expected: {}", list(&expected))?;
                    writeln!(out, "detections got:      {}", list(&got))?;
                }
            }
        }
        Ok(())
    }

    /// A line of an output as shown: generated values as their
    /// placeholders, control characters escaped, masked.
    fn shown(&self, line: &str) -> String {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let escaped: String = self
            .generated
            .conceal(line)
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() && c != '\t' {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        scrub(&escaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fingerprint::FingerprintKey;
    use crate::scan::rule::RuleSpec;

    fn rules() -> Arc<RuleSet> {
        let rule = RuleSpec {
            mask: "dapi****".into(),
            keywords: vec!["bearer".into()],
            ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b")
        };
        Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k")).unwrap())
    }

    fn test(input: &str, output: &str, detections: Option<Vec<(&str, Confidence)>>) -> RuleTest {
        RuleTest {
            name: "t".into(),
            defined_at: "p.yaml:3:5".into(),
            input: input.into(),
            output: output.into(),
            detections: detections.map(|list| {
                list.into_iter()
                    .map(|(rule, confidence)| ExpectedDetection {
                        rule: rule.into(),
                        confidence,
                    })
                    .collect()
            }),
        }
    }

    fn report(outcome: &Outcome) -> String {
        let mut out = Vec::new();
        outcome.write_report("p.yaml", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_passing_test_is_run_both_ways() {
        let outcome = run(
            &rules(),
            &[test(
                "bearer dapi{{hex:32}}\n",
                "bearer dapi****\n",
                Some(vec![("databricks-pat", Confidence::High)]),
            )],
        );
        assert_eq!(
            report(&outcome),
            "p.yaml: 1 test(s) passed, each whole and one byte at a time\n"
        );
    }

    #[test]
    fn a_wrong_expectation_shows_a_diff_with_generated_values_as_placeholders() {
        let outcome = run(
            &rules(),
            &[test(
                "a\nkey dapi{{hex:32}} x{{hex:32}}\nb",
                "a\nkey dapi**** x\nb\n",
                Some(vec![("databricks-pat", Confidence::High)]),
            )],
        );
        assert_eq!(outcome.failed(), 1);
        assert_eq!(
            report(&outcome),
            "p.yaml: test 't' (p.yaml:3:5) FAILED, whole input and one byte at a time:\n\
             --- expected output\n\
             +++ got output\n \
             a\n\
             -key dapi**** x\n\
             -b\n\
             +key dapi**** x{{hex:32}}\n\
             +b\n\
             \\ No newline at end of output\n\
             detections expected: databricks-pat high\n\
             detections got:      databricks-pat medium\n\
             p.yaml: 1 of 1 test(s) failed\n"
        );
    }

    #[test]
    fn a_result_of_one_feeding_alone_is_reported_as_such() {
        // As a chunking bug would show: the scan of one byte at a time
        // differs from the whole.
        let t = test("dapi{{hex:32}}", "dapi****", Some(vec![]));
        let mut generated = Generated::default();
        let expected = generated.expand(&t.name, &t.output);
        let right = Got {
            output: b"dapi****".to_vec(),
            detections: vec![],
        };
        let leaked = Got {
            output: generated.expand(&t.name, "dapi{{hex:32}}").into_bytes(),
            detections: vec![],
        };
        let failure = judge(
            &t,
            expected,
            generated,
            &[(Feeding::Whole, right), (Feeding::ByteAtATime, leaked)],
        )
        .unwrap();
        let mut out = Vec::new();
        failure.write("p.yaml", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "p.yaml: test 't' (p.yaml:3:5) FAILED, one byte at a time:\n\
             --- expected output\n\
             +++ got output\n\
             -dapi****\n\
             \\ No newline at end of output\n\
             +dapi{{hex:32}}\n\
             \\ No newline at end of output\n"
        );
    }

    #[test]
    fn a_literal_token_in_an_output_is_masked_in_the_report() {
        let token = format!("dapi{}", "0123456789abcdef".repeat(2).replace('0', "7"));
        let outcome = run(&rules(), &[test("x\n", &format!("{token}\n"), None)]);
        let report = report(&outcome);
        assert!(!report.contains(&token[4..]), "{report}");
        assert!(report.contains("-dapi****\n+x\n"), "{report}");
    }

    #[test]
    fn rules_no_test_expects_are_named() {
        let outcome = run(&rules(), &[test("x", "x", Some(vec![]))]);
        assert_eq!(
            report(&outcome),
            "p.yaml: 1 test(s) passed, each whole and one byte at a time; no test expects a detection of databricks-pat\n"
        );
    }
}
