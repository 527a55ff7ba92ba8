//! What the scanner reports about each match.
//!
//! A `Detection` carries everything the audit stream and the metrics need and
//! nothing from which the secret could be read back: the matched bytes are
//! represented only by their keyed fingerprint.

use std::fmt;
use std::sync::Arc;

use crate::scan::fingerprint::Fingerprint;

/// How sure we are that a match is a live secret (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Confidence {
    /// An exclusion term is nearby or the value is a placeholder.
    Low,
    /// Neither corroborating nor excluding context.
    Medium,
    /// A keyword is nearby and nothing excludes it.
    High,
}

impl Confidence {
    /// All levels, lowest first.
    pub const ALL: [Confidence; 3] = [Confidence::Low, Confidence::Medium, Confidence::High];

    /// The level as written in audit records and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    /// Exclusions and placeholders win over keywords.
    pub(crate) fn assess(keyword_found: bool, excluded: bool, placeholder: bool) -> Confidence {
        if excluded || placeholder {
            Confidence::Low
        } else if keyword_found {
            Confidence::High
        } else {
            Confidence::Medium
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One match, classified by its context once that context is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Id of the rule that matched.
    pub rule: Arc<str>,
    /// Byte offset of the match's first byte in its stream (0-based).
    pub offset: u64,
    /// Line of the match's first byte (1-based).
    pub line: u64,
    /// The classification of the context.
    pub confidence: Confidence,
    /// Keywords found in the context, lower-cased, each once, in the rule's order.
    pub keywords: Vec<Arc<str>>,
    /// Exclusion terms found in the context, lower-cased, each once, in the rule's order.
    pub exclusions: Vec<Arc<str>>,
    /// Whether the matched value is a well-known placeholder.
    pub placeholder: bool,
    /// Whether the match was masked (false only for allow-listed values).
    pub masked: bool,
    /// Keyed hash of the matched bytes.
    pub fingerprint: Fingerprint,
}
