//! The audit record, as written: field names and order are part of the
//! interface (SPEC §5).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::scan::detection::Detection;

/// One detection, as a line of the audit stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the match passed through, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// `stdin`, `file:<path>` or `tcp:<peer>`.
    pub stream: String,
    /// Id of the rule that matched.
    pub rule: String,
    /// Byte offset of the match's first byte in its stream (0-based).
    pub offset: u64,
    /// Line of the match's first byte (1-based).
    pub line: u64,
    /// `low`, `medium` or `high`.
    pub confidence: String,
    /// Keywords found in the context, lower-cased, each once.
    pub keywords: Vec<String>,
    /// Exclusion terms found in the context, lower-cased, each once.
    pub exclusions: Vec<String>,
    /// Whether the value is a well-known placeholder.
    pub placeholder: bool,
    /// Whether the match was masked (false only for allow-listed values).
    pub masked: bool,
    /// Keyed hash of the matched secret, 16 hex digits.
    pub fingerprint: String,
}

impl AuditRecord {
    /// The record of `detection` in `stream`, seen at `ts`.
    pub fn new(detection: &Detection, stream: &str, ts: String) -> AuditRecord {
        let strings = |terms: &[Arc<str>]| terms.iter().map(|t| t.to_string()).collect();
        AuditRecord {
            ts,
            stream: stream.to_string(),
            rule: detection.rule.to_string(),
            offset: detection.offset,
            line: detection.line,
            confidence: detection.confidence.as_str().to_string(),
            keywords: strings(&detection.keywords),
            exclusions: strings(&detection.exclusions),
            placeholder: detection.placeholder,
            masked: detection.masked,
            fingerprint: detection.fingerprint.to_string(),
        }
    }

    /// The record as one line of JSON, with its newline.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing plain strings, numbers and booleans cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::detection::Confidence;
    use crate::scan::fingerprint::FingerprintKey;

    #[test]
    fn fields_in_the_documented_order() {
        let detection = Detection {
            rule: Arc::from("databricks-pat"),
            offset: 1234,
            line: 17,
            confidence: Confidence::High,
            keywords: vec![Arc::from("bearer")],
            exclusions: vec![],
            placeholder: false,
            masked: true,
            fingerprint: FingerprintKey::derive(b"k").fingerprint(b"v"),
        };
        let record = AuditRecord::new(
            &detection,
            "tcp:10.0.0.7:51812",
            "2026-11-22T14:03:07.123Z".into(),
        );
        let line = String::from_utf8(record.to_line()).unwrap();
        let fingerprint = detection.fingerprint;
        assert_eq!(
            line,
            format!(
                "{{\"ts\":\"2026-11-22T14:03:07.123Z\",\"stream\":\"tcp:10.0.0.7:51812\",\"rule\":\"databricks-pat\",\"offset\":1234,\"line\":17,\"confidence\":\"high\",\"keywords\":[\"bearer\"],\"exclusions\":[],\"placeholder\":false,\"masked\":true,\"fingerprint\":\"{fingerprint}\"}}\n"
            )
        );
        assert_eq!(serde_json::from_str::<AuditRecord>(&line).unwrap(), record);
    }
}
