//! Configuration: the YAML file of SPEC §6 and §9 into typed settings,
//! validated before any input is read. Every refusal names the file, and where
//! it can the line and column, of what is wrong.
//!
//! The built-in default is `config/logredact.yaml`, embedded at build time.
//! A file may `include` rule packs (files with only `rules:`), whose paths are
//! relative to the including file. The rules are the file's own `rules` (the
//! built-in default rules if it has no `rules` key), then each pack's, in order.
//!
//! Text values, in the file and in its packs, may name environment variables
//! (`${VAR}`, `${VAR:-default}`, `$$` for `$`); see [`interpolate`].

mod error;
pub mod forward;
mod interpolate;
mod key;
mod locate;
pub mod spec;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ruletest::{ExpectedDetection, RuleTest, generate};
use crate::scan::detection::Confidence;
use crate::scan::fingerprint::FingerprintKey;
use crate::scan::rule::{DEFAULT_WINDOW, RuleError, RuleSet, RuleSpec};
pub use error::ConfigError;
use interpolate::{Concealed, Interpolation, Lookup};
pub use key::{KEY_ENV, KeyOrigin, MIN_KEY_BYTES, resolve_key};
use locate::{SourceText, Step};
pub use spec::{InputSpec, OutputSpec, RotatedNames, SpecError};
pub use tls::{GivenIn, TlsSettings};

/// The built-in default configuration.
pub const BUILTIN_CONFIG: &str = include_str!("../../config/logredact.yaml");

/// How the built-in configuration is named in messages.
pub const BUILTIN_ORIGIN: &str = "built-in default configuration";

/// Mask of a rule that does not set one.
pub const DEFAULT_MASK: &str = "****";

/// Default `limits.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default `limits.max_files`.
pub const DEFAULT_MAX_FILES: usize = 1024;

/// Default `limits.line_hold_secs`: how long a stream in the middle of a
/// long line may hold the shared output with nothing to add (SPEC §8).
pub const DEFAULT_LINE_HOLD: Duration = Duration::from_secs(2);

/// Default `limits.idle_timeout_secs`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    include: Vec<String>,
    rules: Option<Vec<RuleFormat>>,
    inputs: Option<Vec<InputEntry>>,
    output: Option<String>,
    audit: Option<AuditFormat>,
    state_dir: Option<String>,
    admin: Option<AdminFormat>,
    limits: Option<LimitsFormat>,
    tls: Option<tls::TlsFormat>,
    forward: Option<forward::ForwardFormat>,
    #[serde(default)]
    tests: Vec<TestFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulePackFormat {
    rules: Vec<RuleFormat>,
    #[serde(default)]
    tests: Vec<TestFormat>,
}

/// A rule test (see [`crate::ruletest`]). Its texts are not interpolated:
/// a test means the same wherever it runs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFormat {
    name: String,
    input: String,
    output: String,
    detections: Option<Vec<DetectionFormat>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectionFormat {
    rule: String,
    confidence: ConfidenceFormat,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ConfidenceFormat {
    Low,
    Medium,
    High,
}

impl From<ConfidenceFormat> for Confidence {
    fn from(confidence: ConfidenceFormat) -> Confidence {
        match confidence {
            ConfidenceFormat::Low => Confidence::Low,
            ConfidenceFormat::Medium => Confidence::Medium,
            ConfidenceFormat::High => Confidence::High,
        }
    }
}

/// The tests of one file, with what is needed to locate their errors.
struct FileTests {
    tests: Vec<TestFormat>,
    file: String,
    text: SourceText,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFormat {
    id: String,
    pattern: String,
    #[serde(default = "default_mask")]
    mask: String,
    #[serde(default = "default_window")]
    window: usize,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    exclusions: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFormat {
    path: Option<String>,
    fingerprint_key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminFormat {
    listen: Option<String>,
}

/// An entry of `inputs`: a spec, or a followed file (or pattern) with the
/// names of its rotated generations.
#[derive(Deserialize)]
#[serde(untagged)]
enum InputEntry {
    Spec(String),
    Follow(FollowEntry),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowEntry {
    /// The path or pattern, as after `follow:`.
    follow: String,
    /// How its rotated generations are named (`{name}.*`, `app-*.log`).
    rotated: Option<String>,
}

impl InputEntry {
    fn parse(&self) -> Result<InputSpec, SpecError> {
        match self {
            InputEntry::Spec(text) => text.parse(),
            InputEntry::Follow(FollowEntry { follow, rotated }) => {
                let spec: InputSpec = format!("follow:{follow}").parse()?;
                let Some(rotated) = rotated else {
                    return Ok(spec);
                };
                let names = RotatedNames::pattern(rotated)?;
                Ok(match spec {
                    InputSpec::Follow(path, _) => InputSpec::Follow(path, names),
                    InputSpec::FollowGlob(pattern, _) => InputSpec::FollowGlob(pattern, names),
                    other => other,
                })
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFormat {
    max_connections: Option<usize>,
    idle_timeout_secs: Option<u64>,
    max_files: Option<usize>,
    line_hold_secs: Option<f64>,
}

fn default_mask() -> String {
    DEFAULT_MASK.to_string()
}

fn default_window() -> usize {
    DEFAULT_WINDOW
}

impl From<RuleFormat> for RuleSpec {
    fn from(rule: RuleFormat) -> RuleSpec {
        RuleSpec {
            id: rule.id,
            pattern: rule.pattern,
            mask: rule.mask,
            window: rule.window,
            keywords: rule.keywords,
            exclusions: rule.exclusions,
            allow: rule.allow,
        }
    }
}

/// Where the audit stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// `-`: standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

impl std::str::FromStr for AuditTarget {
    type Err = SpecError;

    /// `-` is standard error; anything else but the empty string is a file
    /// path.
    fn from_str(text: &str) -> Result<AuditTarget, SpecError> {
        match text {
            "" => Err(SpecError::new("the audit path is empty")),
            "-" => Ok(AuditTarget::Stderr),
            path => Ok(AuditTarget::File(PathBuf::from(path))),
        }
    }
}

/// Limits on connections of TCP inputs and on files found by patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Connections idle this long are closed; `None` never closes them.
    pub idle_timeout: Option<Duration>,
    /// Files found by `follow:` patterns followed at once; more wait until
    /// one is released.
    pub max_files: usize,
    /// How long a stream in the middle of a long line may hold the shared
    /// output with nothing to add; then its line is ended there.
    pub line_hold: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_files: DEFAULT_MAX_FILES,
            line_hold: DEFAULT_LINE_HOLD,
        }
    }
}

/// Where a rule was defined, for messages.
#[derive(Debug, Clone)]
struct RuleOrigin {
    /// The file that holds the rule.
    file: String,
    /// That file's text.
    text: SourceText,
    /// The rule's place in the file's `rules` list, 0-based.
    index: usize,
}

impl RuleOrigin {
    /// `message` about the rule, located at the value at `field` in the rule
    /// (at the rule itself if the field is not written out).
    fn error(&self, field: &[Step<'_>], message: impl Into<String>) -> ConfigError {
        let rule = [Step::Key("rules"), Step::Index(self.index)];
        let path: Vec<Step<'_>> = rule.iter().chain(field).copied().collect();
        let position = self.text.locate(&path).or_else(|| self.text.locate(&rule));
        ConfigError::new(&self.file, message).at(position)
    }
}

/// A configuration file, loaded and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The rules, in priority order.
    pub rules: Vec<RuleSpec>,
    rule_origins: Vec<RuleOrigin>,
    /// Streams to read.
    pub inputs: Vec<InputSpec>,
    /// Where the redacted output goes.
    pub output: OutputSpec,
    /// Where audit records go, if anywhere.
    pub audit: Option<AuditTarget>,
    /// Key file for fingerprints.
    pub fingerprint_key_file: Option<PathBuf>,
    /// Where checkpoints of followed files are kept.
    pub state_dir: Option<PathBuf>,
    /// Address of the admin endpoint.
    pub admin: Option<String>,
    /// Connection limits.
    pub limits: Limits,
    /// TLS settings of `tls://` inputs and outputs (loaded by
    /// [`Config::load_tls`]).
    pub tls: TlsSettings,
    /// The forward protocol's handshake settings.
    pub forward: forward::ForwardSecurity,
    /// The rule tests of the file and of its packs (and the built-in ones
    /// when the built-in rules are used), in that order.
    pub tests: Vec<RuleTest>,
    /// The rule packs it includes, as read: a reload watches them too.
    pub included: Vec<PathBuf>,
    origin: String,
    text: SourceText,
    /// What the environment inserted, concealed from errors.
    concealed: Concealed,
}

impl Config {
    /// The built-in default configuration.
    pub fn builtin() -> Config {
        // The embedded file is checked by the test suite; failing here would
        // be a build defect, not an input error.
        Config::parse(BUILTIN_CONFIG, BUILTIN_ORIGIN, None)
            .unwrap_or_else(|e| panic!("the built-in configuration is invalid: {e}"))
    }

    /// Loads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(&origin, format!("cannot read the configuration: {e}"))
        })?;
        Config::parse(&text, &origin, path.parent())
    }

    /// Parses configuration text; `origin` names it in messages and `dir` is
    /// where its `include` paths are relative to. Environment variables in
    /// its values are interpolated.
    pub fn parse(text: &str, origin: &str, dir: Option<&Path>) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, origin, dir, &interpolate::process_env)
    }

    fn parse_with_env(
        text: &str,
        origin: &str,
        dir: Option<&Path>,
        lookup: Lookup<'_>,
    ) -> Result<Config, ConfigError> {
        let mut interpolation = Interpolation::new(lookup);
        let result = Config::parse_interpolated(text, origin, dir, &mut interpolation);
        let concealed = interpolation.into_concealed();
        match result {
            Ok(config) => Ok(Config {
                concealed,
                ..config
            }),
            Err(error) => Err(concealed.conceal(error)),
        }
    }

    fn parse_interpolated(
        text: &str,
        origin: &str,
        dir: Option<&Path>,
        interpolation: &mut Interpolation<'_>,
    ) -> Result<Config, ConfigError> {
        let mut file: FileFormat = parse_yaml(text, origin)?;
        let source = SourceText::new(text);
        interpolate_file(&mut file, interpolation, &source, origin)?;
        let at = |path: &[Step<'_>], message: String| {
            ConfigError::new(origin, message).at(source.locate(path))
        };
        let mut inherited_tests = Vec::new();
        let (mut rules, mut rule_origins) = match file.rules {
            Some(rules) => located_rules(rules, &source, origin),
            None if origin == BUILTIN_ORIGIN => {
                return Err(ConfigError::new(
                    origin,
                    "the built-in configuration has no rules",
                ));
            }
            None => {
                let builtin = Config::builtin();
                inherited_tests = builtin.tests;
                (builtin.rules, builtin.rule_origins)
            }
        };
        let mut file_tests = vec![FileTests {
            tests: std::mem::take(&mut file.tests),
            file: origin.to_string(),
            text: source.clone(),
        }];
        let mut included = Vec::new();
        for (index, include) in file.include.iter().enumerate() {
            let path = dir.unwrap_or(Path::new(".")).join(include);
            included.push(path.clone());
            let pack_origin = path.display().to_string();
            let pack_text = std::fs::read_to_string(&path).map_err(|e| {
                at(
                    &[Step::Key("include"), Step::Index(index)],
                    format!("cannot read included rule pack {pack_origin}: {e}"),
                )
            })?;
            let mut pack: RulePackFormat = parse_yaml(&pack_text, &pack_origin)?;
            let pack_source = SourceText::new(&pack_text);
            interpolate_rules(&mut pack.rules, interpolation, &pack_source, &pack_origin)?;
            let (pack_rules, pack_origins) = located_rules(pack.rules, &pack_source, &pack_origin);
            rules.extend(pack_rules);
            rule_origins.extend(pack_origins);
            file_tests.push(FileTests {
                tests: pack.tests,
                file: pack_origin,
                text: pack_source,
            });
        }
        let mut tests = inherited_tests;
        for file in file_tests {
            tests.extend(located_tests(file, &rules)?);
        }
        let inputs = match file.inputs {
            None => vec![InputSpec::Stdin],
            Some(inputs) if inputs.is_empty() => {
                return Err(at(
                    &[Step::Key("inputs")],
                    "inputs: at least one input is needed (- is standard input)".into(),
                ));
            }
            Some(inputs) => inputs
                .iter()
                .enumerate()
                .map(|(index, input)| {
                    input.parse().map_err(|e: SpecError| {
                        at(
                            &[Step::Key("inputs"), Step::Index(index)],
                            format!("inputs: {e}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let output = match file.output {
            None => OutputSpec::Stdout,
            Some(output) => output
                .parse()
                .map_err(|e: SpecError| at(&[Step::Key("output")], format!("output: {e}")))?,
        };
        let (audit, fingerprint_key_file) = match file.audit {
            None => (None, None),
            Some(audit) => (
                audit
                    .path
                    .as_deref()
                    .map(|path| {
                        path.parse().map_err(|e: SpecError| {
                            at(
                                &[Step::Key("audit"), Step::Key("path")],
                                format!("audit.path: {e}"),
                            )
                        })
                    })
                    .transpose()?,
                audit.fingerprint_key_file.map(PathBuf::from),
            ),
        };
        let admin = match file.admin.and_then(|admin| admin.listen) {
            None => None,
            Some(listen) => Some(admin_address(&listen).map_err(|e| {
                at(
                    &[Step::Key("admin"), Step::Key("listen")],
                    format!("admin.listen: {e}"),
                )
            })?),
        };
        let limits = match file.limits {
            None => Limits::default(),
            Some(limits) => {
                let max_connections = limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
                if max_connections == 0 {
                    return Err(at(
                        &[Step::Key("limits"), Step::Key("max_connections")],
                        "limits.max_connections must be at least 1".into(),
                    ));
                }
                let max_files = limits.max_files.unwrap_or(DEFAULT_MAX_FILES);
                if max_files == 0 {
                    return Err(at(
                        &[Step::Key("limits"), Step::Key("max_files")],
                        "limits.max_files must be at least 1".into(),
                    ));
                }
                let line_hold = match limits.line_hold_secs {
                    None => DEFAULT_LINE_HOLD,
                    Some(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => {
                        Duration::from_secs_f64(secs)
                    }
                    Some(_) => {
                        return Err(at(
                            &[Step::Key("limits"), Step::Key("line_hold_secs")],
                            "limits.line_hold_secs must be more than 0 and at most 3600".into(),
                        ));
                    }
                };
                let idle_timeout = match limits.idle_timeout_secs {
                    None => Some(DEFAULT_IDLE_TIMEOUT),
                    Some(0) => None,
                    Some(secs) => Some(Duration::from_secs(secs)),
                };
                Limits {
                    max_connections,
                    idle_timeout,
                    max_files,
                    line_hold,
                }
            }
        };
        let tls = match file.tls {
            None => TlsSettings::default(),
            Some(tls) => tls.settings(&at)?,
        };
        let forward = forward::settings(file.forward, at)?;
        Ok(Config {
            included,
            rules,
            rule_origins,
            inputs,
            output,
            audit,
            fingerprint_key_file,
            state_dir: file.state_dir.map(PathBuf::from),
            admin,
            limits,
            tls,
            forward,
            tests,
            origin: origin.to_string(),
            text: source.clone(),
            concealed: Concealed::default(),
        })
    }

    /// Compiles the rules with `key`, refusing what cannot run: every
    /// [`RuleError`] is reported at the value of the rule that is wrong.
    pub fn compile(
        &self,
        key: FingerprintKey,
        key_origin: &KeyOrigin,
    ) -> Result<RuleSet, ConfigError> {
        self.compile_located(key, key_origin)
            .map_err(|error| self.concealed.conceal(error))
    }

    /// Checks the rules as a run would compile them, refusing what a run
    /// would refuse, for commands that read the rules without scanning
    /// (`export-rules`): no fingerprint key is needed, since nothing is
    /// fingerprinted.
    pub fn check_rules(&self) -> Result<RuleSet, ConfigError> {
        let key = FingerprintKey::derive(b"logredact rule check");
        RuleSet::new(self.rules.clone(), key)
            .map_err(|error| self.concealed.conceal(self.locate(error)))
    }

    fn compile_located(
        &self,
        key: FingerprintKey,
        key_origin: &KeyOrigin,
    ) -> Result<RuleSet, ConfigError> {
        let rules = RuleSet::new(self.rules.clone(), key).map_err(|e| self.locate(e))?;
        if *key_origin == KeyOrigin::Random {
            let needs_key = self.rules.iter().position(|rule| {
                rule.allow
                    .iter()
                    .any(|entry| entry.starts_with("fingerprint:"))
            });
            if let Some(index) = needs_key {
                let rule = &self.rules[index];
                let entry = rule
                    .allow
                    .iter()
                    .position(|entry| entry.starts_with("fingerprint:"))
                    .unwrap_or(0);
                return Err(self.rule_origins[index].error(
                    &[Step::Key("allow"), Step::Index(entry)],
                    format!(
                        "rule '{}': allow-list fingerprints need a fixed fingerprint key (--fingerprint-key-file, audit.fingerprint_key_file or {KEY_ENV})",
                        rule.id
                    ),
                ));
            }
        }
        Ok(rules)
    }

    fn locate(&self, error: RuleError) -> ConfigError {
        let index = match &error {
            RuleError::EmptyId { index } => Some(index - 1),
            RuleError::DuplicateId { id } => self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| &r.id == id)
                .nth(1)
                .map(|(i, _)| i),
            other => other
                .rule_id()
                .and_then(|id| self.rules.iter().position(|rule| rule.id == id)),
        };
        let Some((rule, origin)) =
            index.and_then(|i| Some((self.rules.get(i)?, self.rule_origins.get(i)?)))
        else {
            let position = match error {
                RuleError::NoRules => self.text.locate(&[Step::Key("rules")]),
                _ => None,
            };
            return ConfigError::new(&self.origin, error.to_string()).at(position);
        };
        let empty_term = |key, terms: &[String]| {
            terms
                .iter()
                .position(String::is_empty)
                .map(|i| [Step::Key(key), Step::Index(i)])
        };
        let field: Vec<Step<'_>> = match &error {
            RuleError::EmptyId { .. } | RuleError::DuplicateId { .. } => vec![Step::Key("id")],
            RuleError::InvalidPattern { .. }
            | RuleError::Unbounded { .. }
            | RuleError::TooLong { .. }
            | RuleError::MatchesEmpty { .. }
            | RuleError::UnicodeWordBoundary { .. }
            | RuleError::TextAnchor { .. } => vec![Step::Key("pattern")],
            RuleError::Mask { .. } => vec![Step::Key("mask")],
            RuleError::Window { .. } => vec![Step::Key("window")],
            RuleError::Terms { .. } => empty_term("keywords", &rule.keywords)
                .or_else(|| empty_term("exclusions", &rule.exclusions))
                .map_or_else(|| vec![Step::Key("keywords")], Vec::from),
            RuleError::Allow { index, .. } => {
                vec![Step::Key("allow"), Step::Index(index.saturating_sub(1))]
            }
            RuleError::NoRules | RuleError::Compile { .. } => Vec::new(),
        };
        origin.error(&field, error.to_string())
    }

    /// Where this configuration came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<T, ConfigError> {
    // An empty document (or only comments) is an empty mapping: all defaults.
    let text = if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        "{}"
    } else {
        text
    };
    check_nesting(text, origin)?;
    serde_yaml::from_str(text).map_err(|e| ConfigError::from_yaml(origin, &e))
}

/// The deepest nesting of `[` and `{` a configuration may have. The parser's
/// time grows with the square of the depth (100,000 took 26 s); no
/// configuration needs more than a few.
const MAX_NESTING: usize = 64;

/// Refuses flow collections nested deeper than [`MAX_NESTING`], before the
/// parser sees them: at the first bracket too deep.
fn check_nesting(text: &str, origin: &str) -> Result<(), ConfigError> {
    let mut depth = 0usize;
    for (index, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for (column, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(ConfigError::new(
                            origin,
                            format!("collections nested more than {MAX_NESTING} deep"),
                        )
                        .at(Some(locate::Position {
                            line: index + 1,
                            column: column + 1,
                        })));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                (None, _) => {}
            }
            previous = c;
        }
    }
    Ok(())
}

/// Interpolates every text value of a configuration file.
fn interpolate_file(
    file: &mut FileFormat,
    interpolation: &mut Interpolation<'_>,
    source: &SourceText,
    origin: &str,
) -> Result<(), ConfigError> {
    use Step::{Index, Key};
    interpolation.list(&mut file.include, source, origin, &[Key("include")])?;
    if let Some(rules) = &mut file.rules {
        interpolate_rules(rules, interpolation, source, origin)?;
    }
    for (index, input) in file.inputs.iter_mut().flatten().enumerate() {
        let entry = [Key("inputs"), Index(index)];
        match input {
            InputEntry::Spec(spec) => interpolation.value(spec, source, origin, &entry)?,
            InputEntry::Follow(FollowEntry { follow, rotated }) => {
                let at = |key| [entry[0], entry[1], Key(key)];
                interpolation.value(follow, source, origin, &at("follow"))?;
                if let Some(rotated) = rotated {
                    interpolation.value(rotated, source, origin, &at("rotated"))?;
                }
            }
        }
    }
    let mut values: Vec<(&mut String, Vec<Step<'_>>)> = Vec::new();
    if let Some(output) = &mut file.output {
        values.push((output, vec![Key("output")]));
    }
    if let Some(audit) = &mut file.audit {
        if let Some(path) = &mut audit.path {
            values.push((path, vec![Key("audit"), Key("path")]));
        }
        if let Some(key_file) = &mut audit.fingerprint_key_file {
            values.push((key_file, vec![Key("audit"), Key("fingerprint_key_file")]));
        }
    }
    if let Some(state_dir) = &mut file.state_dir {
        values.push((state_dir, vec![Key("state_dir")]));
    }
    if let Some(listen) = file.admin.as_mut().and_then(|admin| admin.listen.as_mut()) {
        values.push((listen, vec![Key("admin"), Key("listen")]));
    }
    if let Some(section) = &mut file.forward {
        forward::interpolate(section, interpolation, source, origin)?;
    }
    for (value, path) in values {
        interpolation.value(value, source, origin, &path)?;
    }
    for (value, path) in file.tls.iter_mut().flat_map(tls::TlsFormat::values) {
        interpolation.value(value, source, origin, &path)?;
    }
    Ok(())
}

/// Interpolates every text value of the rules of a file (a configuration or
/// a rule pack).
fn interpolate_rules(
    rules: &mut [RuleFormat],
    interpolation: &mut Interpolation<'_>,
    source: &SourceText,
    origin: &str,
) -> Result<(), ConfigError> {
    use Step::{Index, Key};
    for (index, rule) in rules.iter_mut().enumerate() {
        let at = |key| [Key("rules"), Index(index), Key(key)];
        interpolation.value(&mut rule.id, source, origin, &at("id"))?;
        interpolation.value(&mut rule.pattern, source, origin, &at("pattern"))?;
        interpolation.value(&mut rule.mask, source, origin, &at("mask"))?;
        interpolation.list(&mut rule.keywords, source, origin, &at("keywords"))?;
        interpolation.list(&mut rule.exclusions, source, origin, &at("exclusions"))?;
        interpolation.list(&mut rule.allow, source, origin, &at("allow"))?;
    }
    Ok(())
}

/// The tests of a file, checked: each has a name of its own in the file,
/// its placeholders for generated values are well formed, and the rules it
/// expects detections of are among `rules`.
fn located_tests(file: FileTests, rules: &[RuleSpec]) -> Result<Vec<RuleTest>, ConfigError> {
    use Step::{Index, Key};
    let FileTests { tests, file, text } = file;
    let at =
        |path: &[Step<'_>], message: String| ConfigError::new(&file, message).at(text.locate(path));
    let mut checked: Vec<RuleTest> = Vec::with_capacity(tests.len());
    for (index, test) in tests.into_iter().enumerate() {
        let field = |key| [Key("tests"), Index(index), Key(key)];
        if test.name.trim().is_empty() {
            return Err(at(&field("name"), "tests: a test needs a name".into()));
        }
        if checked.iter().any(|other| other.name == test.name) {
            return Err(at(
                &field("name"),
                format!("tests: two tests are named '{}'", test.name),
            ));
        }
        for key in ["input", "output"] {
            let value = if key == "input" {
                &test.input
            } else {
                &test.output
            };
            generate::check(value)
                .map_err(|e| at(&field(key), format!("tests: '{}': {key}: {e}", test.name)))?;
        }
        let mut detections = None;
        if let Some(expected) = test.detections {
            let mut list = Vec::with_capacity(expected.len());
            for (number, detection) in expected.into_iter().enumerate() {
                if !rules.iter().any(|rule| rule.id == detection.rule) {
                    return Err(at(
                        &[
                            Key("tests"),
                            Index(index),
                            Key("detections"),
                            Index(number),
                            Key("rule"),
                        ],
                        format!(
                            "tests: '{}': no rule has the id '{}'",
                            test.name, detection.rule
                        ),
                    ));
                }
                list.push(ExpectedDetection {
                    rule: detection.rule,
                    confidence: detection.confidence.into(),
                });
            }
            detections = Some(list);
        }
        let defined_at = match text.locate(&[Key("tests"), Index(index)]) {
            Some(position) => format!("{file}:{}:{}", position.line, position.column),
            None => file.clone(),
        };
        checked.push(RuleTest {
            name: test.name,
            defined_at,
            input: test.input,
            output: test.output,
            detections,
        });
    }
    Ok(checked)
}

fn located_rules(
    rules: Vec<RuleFormat>,
    text: &SourceText,
    origin: &str,
) -> (Vec<RuleSpec>, Vec<RuleOrigin>) {
    let origins = (0..rules.len())
        .map(|index| RuleOrigin {
            file: origin.to_string(),
            text: text.clone(),
            index,
        })
        .collect();
    (rules.into_iter().map(RuleSpec::from).collect(), origins)
}

/// Checks an admin address (`HOST:PORT`), as given on the command line or in
/// `admin.listen`.
pub fn admin_address(text: &str) -> Result<String, SpecError> {
    spec::host_port(text, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<Option<String>, ()> {
        Ok(match name {
            "STATE" => Some("/var/lib/x\nadmin: { listen: '0.0.0.0:1' }\n# ".into()),
            "SECRET" => Some("a-secret-value".into()),
            _ => None,
        })
    }

    #[test]
    fn an_interpolated_value_cannot_change_the_yaml_structure() {
        let config =
            Config::parse_with_env("state_dir: '${STATE}'\n", "c.yaml", None, &env).unwrap();
        assert_eq!(
            config.state_dir,
            Some(PathBuf::from(
                "/var/lib/x\nadmin: { listen: '0.0.0.0:1' }\n# "
            ))
        );
        assert_eq!(config.admin, None);
    }

    #[test]
    fn errors_show_the_variable_not_its_value() {
        let error = Config::parse_with_env("output: 'udp://${SECRET}'\n", "c.yaml", None, &env)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "c.yaml:1:9: output: unknown output 'udp://${SECRET}': expected -, file:PATH, tcp://HOST:PORT, tls://HOST:PORT, forward://HOST:PORT or forward+tls://HOST:PORT"
        );
        let text = "rules:\n  - id: r\n    pattern: '${SECRET}('\n";
        let config = Config::parse_with_env(text, "c.yaml", None, &env).unwrap();
        let key = FingerprintKey::derive(b"test key");
        let error = config.compile(key, &KeyOrigin::Random).unwrap_err();
        assert!(!error.to_string().contains("a-secret-value"), "{error}");
        assert!(error.to_string().contains("${SECRET}"), "{error}");
    }
}
