//! Masking of logredact's own words: error messages, log lines and stream
//! ids. They can carry a token that did not come through a stream — a file
//! path, a command-line value, an OS error quoting either — and no secret may
//! reach a log line, an error message or the audit stream (SPEC §5).

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::scan::fingerprint::FingerprintKey;
use crate::scan::rule::RuleSet;
use crate::scan::scanner::redact;

/// The built-in rules, compiled once for messages.
fn message_rules() -> &'static Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES.get_or_init(|| {
        // Messages are masked, never fingerprinted: any fixed key will do.
        let key = FingerprintKey::derive(b"logredact message scrubbing");
        // A message quotes input with escapes (`\n`, `\t`, `\"`, `\u{..}`):
        // the escape's last byte is a word byte, so a token right after it
        // has no word boundary before it. In messages a token is masked
        // wherever it stands; masking too much there costs nothing.
        let rules = crate::defaults::default_rules()
            .into_iter()
            .map(|mut rule| {
                let pattern = rule.pattern.strip_prefix("\\b").unwrap_or(&rule.pattern);
                rule.pattern = pattern.strip_suffix("\\b").unwrap_or(pattern).to_string();
                rule.allow.clear();
                rule
            })
            .collect();
        Arc::new(
            RuleSet::new(rules, key)
                .unwrap_or_else(|e| panic!("the built-in rules do not compile: {e}")),
        )
    })
}

/// `bytes` with every match of the built-in rules masked.
pub fn scrub_bytes(bytes: &[u8]) -> Vec<u8> {
    redact(message_rules(), bytes)
}

/// `message` with every match of the built-in rules masked.
pub fn scrub(message: &str) -> String {
    String::from_utf8_lossy(&scrub_bytes(message.as_bytes())).into_owned()
}

/// The stream id of a file input (`file:PATH`), masked: it names the stream
/// in log lines, audit records and checkpoints.
pub fn file_stream_id(path: &Path) -> String {
    // A file name may hold a newline or an escape sequence: written as is,
    // it would forge or garble log lines.
    let shown: String = path
        .display()
        .to_string()
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    scrub(&format!("file:{shown}"))
}

/// Standard error, with each write masked. The log formatter writes each
/// event with one `write_all` of the whole line, so a token in a log line is
/// never split across two writes.
pub struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write_all(&scrub_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> String {
        // Built at run time, so that no token-shaped literal is committed.
        format!("dapi{}", "0123456789abcdef".repeat(2).replace('0', "7"))
    }

    #[test]
    fn masks_a_token_in_a_message_and_a_file_stream_id() {
        let token = token();
        assert_eq!(
            scrub(&format!("cannot open {token}.log: denied")),
            "cannot open dapi****.log: denied"
        );
        let path = format!("/var/log/{token}/app.log");
        assert_eq!(
            file_stream_id(Path::new(&path)),
            "file:/var/log/dapi****/app.log"
        );
    }

    #[test]
    fn a_token_after_an_escape_is_masked() {
        let token = token();
        for before in ["\\n", "\\t", "\\\"", "\\u{301}", "x", "_"] {
            assert_eq!(
                scrub(&format!("invalid value \"{before}{token}\" here")),
                format!("invalid value \"{before}dapi****\" here")
            );
        }
    }

    #[test]
    fn control_characters_in_a_file_name_are_escaped() {
        assert_eq!(
            file_stream_id(Path::new("/l/a\nFAKE line\u{1b}[31m.log")),
            "file:/l/a\\nFAKE line\\u{1b}[31m.log"
        );
    }
}
