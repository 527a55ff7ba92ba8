//! `logredact export-rules`: the rules of a configuration written out for
//! data loss prevention products, so that logredact's rule file stays the
//! one source of truth:
//!
//! - `purview`: a Microsoft Purview rule package (XML), see [`purview`];
//! - `gcp-dlp`: a Google Cloud DLP inspect template (JSON), see [`gcp`];
//! - `macie`: Amazon Macie custom data identifiers (JSON), see [`macie`].
//!
//! The rules are those a run would have (built-in, file, included packs),
//! checked as a run checks them. Patterns are translated from their parsed
//! form into each product's dialect ([`dialect`]) or, where the product
//! cannot match the same text, the rule is refused with the reason. Whatever
//! a product cannot express — a placeholder test, logredact's ASCII `\b`
//! where the dialect's differs, a keyword after the match, the
//! `{fingerprint}` mask — is a [`Note`]: in the output (a comment, or a
//! `notes` field) and on standard error, never silently dropped.

mod dialect;
mod gcp;
mod macie;
mod purview;

use std::fmt;

use serde::Serialize;

use crate::scan::rule::{RuleSpec, literal_prefixes, parse_pattern};
pub use purview::PackVersion;

/// A product to export to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Microsoft Purview: a sensitive information type rule package.
    Purview,
    /// Google Cloud DLP (Sensitive Data Protection): an inspect template.
    GcpDlp,
    /// Amazon Macie: custom data identifiers.
    Macie,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Purview => "purview",
            Format::GcpDlp => "gcp-dlp",
            Format::Macie => "macie",
        }
    }

    /// The product, as messages name it.
    pub fn product(self) -> &'static str {
        match self {
            Format::Purview => "Microsoft Purview",
            Format::GcpDlp => "Google Cloud DLP",
            Format::Macie => "Amazon Macie",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of thing a [`Note`] says the product cannot express. The names
/// (kebab-case in the output) are stable: scripts may look for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteCode {
    /// The rule is not exported at all.
    Refused,
    /// Masks are not exported: the products report, they do not rewrite.
    Mask,
    /// The mask's `{fingerprint}` has no equivalent.
    FingerprintMask,
    /// Allow-list entries are not exported.
    AllowList,
    /// Each rule is searched on its own, not in one pass with the others.
    IndependentRules,
    /// The dialect's `\b` and word matching count non-ASCII letters.
    WordBoundaryUnicode,
    /// Placeholder values cannot be told apart.
    Placeholders,
    /// Only some placeholder values can be told apart.
    PlaceholdersPartly,
    /// A keyword or exclusion term is left out.
    TermLeftOut,
    /// A term is added, as the product asks.
    TermAdded,
    /// A product limit is exceeded.
    Limit,
    /// The context window is shortened.
    WindowShortened,
    /// What logredact rates low is not reported at all.
    LowIsExcluded,
    /// The keyword window holds the match itself.
    WindowHoldsMatch,
    /// A keyword stands in the rule's own matches and is left out.
    KeywordInsideMatch,
    /// A class matches a non-ASCII character where logredact matches a byte.
    NonAsciiClass,
    /// The keyword distance is measured to the end of the match.
    KeywordDistanceToMatchEnd,
    /// Keywords count only before the match.
    KeywordsBeforeOnly,
    /// Matches without a keyword are not reported.
    MediumNotReported,
    /// Keywords may count inside longer words.
    KeywordSubstring,
    /// Exclusion terms around a match cannot be expressed.
    ContextExclusions,
}

impl NoteCode {
    /// The name, as in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteCode::Refused => "refused",
            NoteCode::Mask => "mask",
            NoteCode::FingerprintMask => "fingerprint-mask",
            NoteCode::AllowList => "allow-list",
            NoteCode::IndependentRules => "independent-rules",
            NoteCode::WordBoundaryUnicode => "word-boundary-unicode",
            NoteCode::Placeholders => "placeholders",
            NoteCode::PlaceholdersPartly => "placeholders-partly",
            NoteCode::TermLeftOut => "term-left-out",
            NoteCode::TermAdded => "term-added",
            NoteCode::Limit => "limit",
            NoteCode::WindowShortened => "window-shortened",
            NoteCode::LowIsExcluded => "low-is-excluded",
            NoteCode::WindowHoldsMatch => "window-holds-match",
            NoteCode::KeywordInsideMatch => "keyword-inside-match",
            NoteCode::NonAsciiClass => "non-ascii-class",
            NoteCode::KeywordDistanceToMatchEnd => "keyword-distance-to-match-end",
            NoteCode::KeywordsBeforeOnly => "keywords-before-only",
            NoteCode::MediumNotReported => "medium-not-reported",
            NoteCode::KeywordSubstring => "keyword-substring",
            NoteCode::ContextExclusions => "context-exclusions",
        }
    }
}

/// Something the product cannot express, for one rule or for all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The rule, or `None` for the whole export.
    pub rule: Option<String>,
    /// What kind of difference it is.
    pub code: NoteCode,
    /// The difference, in words.
    pub message: String,
}

impl Note {
    fn rule(id: &str, code: NoteCode, message: String) -> Note {
        Note {
            rule: Some(id.to_string()),
            code,
            message,
        }
    }

    fn general(code: NoteCode, message: String) -> Note {
        Note {
            rule: None,
            code,
            message,
        }
    }

    fn refused(id: &str, format: Format, reason: &str) -> Note {
        Note::rule(
            id,
            NoteCode::Refused,
            format!("not exported to {}: {reason}", format.product()),
        )
    }
}

impl fmt::Display for Note {
    /// `[code] rule 'id': message`, or `[code] message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.code.as_str())?;
        match &self.rule {
            Some(rule) => write!(f, "rule '{rule}': {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// How to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The product.
    pub format: Format,
    /// The rule package version (Purview only).
    pub pack_version: PackVersion,
}

/// An export: the output and what it cannot express.
#[derive(Debug, Clone)]
pub struct Export {
    /// The file: XML in UTF-16 for Purview, JSON (UTF-8) for the others.
    pub bytes: Vec<u8>,
    /// Every difference from logredact, general ones first, then by rule.
    pub notes: Vec<Note>,
    /// The rules exported, in order.
    pub exported: Vec<String>,
    /// The rules not exported, with the reason.
    pub refused: Vec<(String, String)>,
}

/// Why nothing could be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Every rule was refused.
    #[error("no rule can be exported to {product}:{reasons}")]
    NothingExported {
        /// The product.
        product: &'static str,
        /// One line per rule: its id and why.
        reasons: String,
    },
}

/// One rule, parsed for the exporters.
pub(crate) struct Prepared<'a> {
    pub(crate) spec: &'a RuleSpec,
    pub(crate) node: dialect::Node,
    /// The literal prefixes the scanner strips before its placeholder test.
    pub(crate) prefixes: Vec<Vec<u8>>,
    /// The shortest and longest match, in bytes (characters: the exported
    /// patterns are ASCII).
    pub(crate) min_len: usize,
    pub(crate) max_len: usize,
}

/// What an exporter made of one rule.
pub(crate) enum RuleExport<T> {
    Exported { value: T, notes: Vec<Note> },
    Refused(String),
}

/// The keywords of a rule for a product whose keyword window holds the
/// match itself: without those that stand in the rule's own matches, each
/// with a note.
fn keywords_outside_matches(
    prepared: &Prepared<'_>,
    product: &str,
    notes: &mut Vec<Note>,
) -> Vec<String> {
    let spec = prepared.spec;
    let (inside, outside): (Vec<String>, Vec<String>) = spec
        .keywords
        .iter()
        .cloned()
        .partition(|term| dialect::term_in_prefixes(term, &prepared.node, &prepared.prefixes));
    if !inside.is_empty() {
        notes.push(Note::rule(
            &spec.id,
            NoteCode::KeywordInsideMatch,
            format!(
                "the keyword(s) {} stand as whole words in the rule's own matches, which {product} would count in every such match (its keyword window holds the match); left out, so that a match alone is not rated high: logredact, which looks only around a match, still counts them there",
                inside.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    outside
}

fn prepare(spec: &RuleSpec) -> Result<Prepared<'_>, String> {
    let hir = parse_pattern(&spec.pattern).map_err(|e| format!("invalid pattern: {e}"))?;
    let node = dialect::lower(&hir).map_err(|dialect::Inexpressible(reason)| reason)?;
    let properties = hir.properties();
    let min_len = properties.minimum_len().unwrap_or(0);
    Ok(Prepared {
        spec,
        node,
        prefixes: literal_prefixes(&hir),
        min_len,
        max_len: properties.maximum_len().unwrap_or(min_len),
    })
}

/// Exports `rules` (checked as a run checks them) as `options` say.
pub fn export(rules: &[RuleSpec], options: &Options) -> Result<Export, ExportError> {
    let format = options.format;
    let product = format.product();
    let mut notes = Vec::new();
    let mut prepared = Vec::new();
    notes.push(Note::general(
        NoteCode::Mask,
        format!(
            "masks are not exported: {product} reports what it finds, it does not rewrite text"
        ),
    ));
    if rules.len() > 1 {
        notes.push(Note::general(
            NoteCode::IndependentRules,
            format!(
                "{product} searches for each rule on its own; logredact finds one leftmost match among all rules, so text two rules match is one detection there and may be two here"
            ),
        ));
    }
    for spec in rules {
        if spec.mask.contains("{fingerprint}") {
            notes.push(Note::rule(
                &spec.id,
                NoteCode::FingerprintMask,
                "the mask's {fingerprint} (a keyed hash that correlates redacted matches) has no equivalent".to_string(),
            ));
        }
        if !spec.allow.is_empty() {
            notes.push(Note::rule(
                &spec.id,
                NoteCode::AllowList,
                format!(
                    "the allow-list ({} entries) is not exported, since entries may be real values: {product} reports them",
                    spec.allow.len()
                ),
            ));
        }
        match prepare(spec) {
            Ok(rule) => prepared.push(rule),
            Err(reason) => notes.push(Note::refused(&spec.id, format, &reason)),
        }
    }
    let result = match format {
        Format::Purview => purview::export(&prepared, options.pack_version, &mut notes),
        Format::GcpDlp => gcp::export(&prepared, &mut notes),
        Format::Macie => macie::export(&prepared, &mut notes),
    };
    let refused: Vec<(String, String)> = notes
        .iter()
        .filter(|note| note.code == NoteCode::Refused)
        .filter_map(|note| Some((note.rule.clone()?, note.message.clone())))
        .collect();
    match result {
        Some((bytes, exported)) => Ok(Export {
            bytes,
            notes,
            exported,
            refused,
        }),
        None => Err(ExportError::NothingExported {
            product,
            reasons: refused
                .iter()
                .map(|(id, reason)| format!("\nrule '{id}': {reason}"))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_codes_are_named_as_serialized() {
        use NoteCode::*;
        for code in [
            Refused,
            Mask,
            FingerprintMask,
            AllowList,
            IndependentRules,
            WordBoundaryUnicode,
            Placeholders,
            PlaceholdersPartly,
            TermLeftOut,
            TermAdded,
            Limit,
            WindowShortened,
            LowIsExcluded,
            WindowHoldsMatch,
            KeywordInsideMatch,
            NonAsciiClass,
            KeywordDistanceToMatchEnd,
            KeywordsBeforeOnly,
            MediumNotReported,
            KeywordSubstring,
            ContextExclusions,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
