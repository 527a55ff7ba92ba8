//! Configuration errors, located for people: the file, and where known the
//! line and column of what is wrong.

use std::fmt;

/// A configuration was refused. Displayed as `FILE:LINE:COLUMN: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `built-in default configuration`).
    pub origin: String,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(origin: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> ConfigError {
        self.line = line;
        self
    }

    /// A YAML syntax or shape error, located by the parser.
    pub(crate) fn from_yaml(origin: &str, error: &serde_yaml::Error) -> ConfigError {
        let mut message = error.to_string();
        let location = error.location();
        if let Some(location) = &location {
            // The position is given in front; drop the parser's own suffix.
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        ConfigError {
            origin: origin.to_string(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line of the `nth` (0-based) place where `key:` is followed by
/// `value` (or by anything, if `value` is `None`), in block or flow style.
pub(crate) fn find_key_line(
    text: &str,
    key: &str,
    value: Option<&str>,
    nth: usize,
) -> Option<usize> {
    let mut seen = 0;
    for (index, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        let mut rest = code;
        while let Some(at) = rest.find(key) {
            let before_ok = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| c == ' ' || c == '{' || c == ',' || c == '-' || c == '\t');
            let after = &rest[at + key.len()..];
            rest = after;
            let Some(after_colon) = after.strip_prefix(':') else {
                continue;
            };
            if !before_ok {
                continue;
            }
            let matches = match value {
                None => true,
                Some(value) => {
                    let v = after_colon.trim_start().trim_start_matches(['\'', '"']);
                    v.strip_prefix(value).is_some_and(|tail| {
                        tail.is_empty() || tail.starts_with(['\'', '"', ',', '}', ' ', '\t'])
                    })
                }
            };
            if matches {
                if seen == nth {
                    return Some(index + 1);
                }
                seen += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = ConfigError::new("a.yaml", "bad").at_line(Some(3));
        assert_eq!(e.to_string(), "a.yaml:3: bad");
        assert_eq!(ConfigError::new("a.yaml", "bad").to_string(), "a.yaml: bad");
    }

    #[test]
    fn finds_keys_in_block_and_flow_style() {
        let text =
            "rules:\n  - id: a\n    pattern: x\n  - {id: 'b', pattern: y}\n  - id: a # again\n";
        assert_eq!(find_key_line(text, "id", Some("a"), 0), Some(2));
        assert_eq!(find_key_line(text, "id", Some("b"), 0), Some(4));
        assert_eq!(find_key_line(text, "id", Some("a"), 1), Some(5));
        assert_eq!(find_key_line(text, "pattern", None, 1), Some(4));
        assert_eq!(find_key_line(text, "id", Some("c"), 0), None);
        // "valid:" is not "id:".
        assert_eq!(find_key_line("valid: a\n", "id", Some("a"), 0), None);
    }
}
