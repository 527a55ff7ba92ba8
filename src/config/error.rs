//! Configuration errors, located for people: the file, and where known the
//! line and column of what is wrong.

use std::fmt;

use crate::config::locate::Position;

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

    /// The error located at `position`, if known.
    pub(crate) fn at(mut self, position: Option<Position>) -> ConfigError {
        self.line = position.map(|p| p.line);
        self.column = position.map(|p| p.column);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = ConfigError::new("a.yaml", "bad").at(Some(Position { line: 3, column: 7 }));
        assert_eq!(e.to_string(), "a.yaml:3:7: bad");
        assert_eq!(ConfigError::new("a.yaml", "bad").to_string(), "a.yaml: bad");
    }
}
