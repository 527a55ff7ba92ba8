//! Environment variables in configuration values: `${VAR}`, `${VAR:-default}`
//! and `$$` for a literal `$`.
//!
//! Interpolation applies to each text value *after* the YAML is parsed, never
//! to the YAML text: a variable's value is inserted into one scalar as it is,
//! so a newline, a `:` or a `#` in it cannot add keys, end a value or start a
//! comment. A value is inserted once, never interpolated again. A `$` that is
//! followed by neither `{` nor `$` is an ordinary character (as in Fluent
//! Bit; `$VAR` is not a variable), so a pattern's `$` anchor needs no escape.
//!
//! What the environment inserted is concealed from every configuration error
//! (see [`Interpolation::conceal`]): a variable may hold a secret, and an error
//! that quotes the value it refuses would print it.

use std::fmt;

use crate::config::error::ConfigError;
use crate::config::locate::{SourceText, Step};

/// Values the environment inserted that are shorter than this are not
/// concealed: they are no secret, and concealing every `1` or `on` of a
/// message would garble it.
const MIN_CONCEALED: usize = 4;

/// Why a value cannot be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolationError {
    /// `${` with no `}` after it.
    Unclosed,
    /// `${}` or `${:-default}`.
    EmptyName,
    /// A name that is not letters, digits and `_`, or starts with a digit.
    BadName(String),
    /// The variable is not set, and no default is given.
    Unset(String),
    /// The variable's value is not valid UTF-8.
    NotUnicode(String),
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolationError::Unclosed => {
                f.write_str("'${' is not closed by '}' (write $$ for a literal $)")
            }
            InterpolationError::EmptyName => f.write_str("'${}' names no variable"),
            InterpolationError::BadName(name) => write!(
                f,
                "'{name}' is not a variable name (letters, digits and _, not starting with a digit)"
            ),
            InterpolationError::Unset(name) => write!(
                f,
                "environment variable {name} is not set and has no default (${{{name}:-DEFAULT}} gives one)"
            ),
            InterpolationError::NotUnicode(name) => {
                write!(f, "environment variable {name} is not valid UTF-8")
            }
        }
    }
}

/// How a variable is looked up: its value, `Err(())` if it is set but not
/// valid UTF-8, `Ok(None)` if it is not set.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<String>, ()>;

/// The process environment, as [`Lookup`] wants it.
pub(crate) fn process_env(name: &str) -> Result<Option<String>, ()> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(()),
    }
}

/// Interpolation of one configuration's values; remembers what the
/// environment inserted, to conceal it from errors.
pub(crate) struct Interpolation<'a> {
    lookup: Lookup<'a>,
    /// (name, value) of every variable whose value was inserted.
    inserted: Vec<(String, String)>,
}

impl<'a> Interpolation<'a> {
    pub(crate) fn new(lookup: Lookup<'a>) -> Interpolation<'a> {
        Interpolation {
            lookup,
            inserted: Vec::new(),
        }
    }

    /// Interpolates the value at `path` in `text` (the file `origin`) in
    /// place; an error is located at the value.
    pub(crate) fn value(
        &mut self,
        value: &mut String,
        text: &SourceText,
        origin: &str,
        path: &[Step<'_>],
    ) -> Result<(), ConfigError> {
        if !value.contains('$') {
            return Ok(());
        }
        match self.interpolate(value) {
            Ok(expanded) => {
                *value = expanded;
                Ok(())
            }
            Err(e) => Err(
                ConfigError::new(origin, format!("{}: {e}", field_name(path)))
                    .at(text.locate(path)),
            ),
        }
    }

    /// Interpolates every value of `values`, the list at `path`.
    pub(crate) fn list(
        &mut self,
        values: &mut [String],
        text: &SourceText,
        origin: &str,
        path: &[Step<'_>],
    ) -> Result<(), ConfigError> {
        for (index, value) in values.iter_mut().enumerate() {
            let path: Vec<Step<'_>> = path.iter().copied().chain([Step::Index(index)]).collect();
            self.value(value, text, origin, &path)?;
        }
        Ok(())
    }

    /// `text` with its variables replaced.
    pub(crate) fn interpolate(&mut self, text: &str) -> Result<String, InterpolationError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let close = inner.find('}').ok_or(InterpolationError::Unclosed)?;
                out.push_str(&self.variable(&inner[..close])?);
                rest = &inner[close + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of `NAME` or `NAME:-default` (the default if the variable
    /// is unset or empty).
    fn variable(&mut self, inside: &str) -> Result<String, InterpolationError> {
        let (name, default) = match inside.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inside, None),
        };
        if name.is_empty() {
            return Err(InterpolationError::EmptyName);
        }
        if !is_variable_name(name) {
            return Err(InterpolationError::BadName(name.to_string()));
        }
        let value =
            (self.lookup)(name).map_err(|()| InterpolationError::NotUnicode(name.to_string()))?;
        match (value, default) {
            (Some(value), Some(default)) if value.is_empty() => Ok(default.to_string()),
            (Some(value), _) => {
                self.inserted.push((name.to_string(), value.clone()));
                Ok(value)
            }
            (None, Some(default)) => Ok(default.to_string()),
            (None, None) => Err(InterpolationError::Unset(name.to_string())),
        }
    }

    /// What the environment inserted, to conceal from later errors.
    pub(crate) fn into_concealed(self) -> Concealed {
        let mut values: Vec<(String, String)> = self
            .inserted
            .into_iter()
            .filter(|(_, value)| value.len() >= MIN_CONCEALED)
            .collect();
        // The longest first, so that a value inside another is not
        // replaced in it first.
        values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        values.dedup();
        Concealed(values)
    }
}

/// Values the environment inserted into a configuration, each with its
/// variable's name. Its `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub(crate) struct Concealed(Vec<(String, String)>);

impl Concealed {
    /// `error` with every value the environment inserted shown in its
    /// message as the `${NAME}` it came from. The file name stays as it is:
    /// it names a file that exists, which the reader needs to find.
    pub(crate) fn conceal(&self, mut error: ConfigError) -> ConfigError {
        for (name, value) in &self.0 {
            let shown = format!("${{{name}}}");
            error.message = error.message.replace(value.as_str(), &shown);
        }
        error
    }
}

impl fmt::Debug for Concealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Concealed({} values)", self.0.len())
    }
}

/// Whether `name` is a variable name: ASCII letters, digits and `_`, not
/// starting with a digit.
fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How a value is named in messages: `rules[0].pattern`, `audit.path`.
fn field_name(path: &[Step<'_>]) -> String {
    let mut name = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(key);
            }
            Step::Index(index) => name.push_str(&format!("[{index}]")),
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<Option<String>, ()> {
        match name {
            "DIR" => Ok(Some("/var/log".into())),
            "EMPTY" => Ok(Some(String::new())),
            "BYTES" => Err(()),
            _ => Ok(None),
        }
    }

    fn expand(text: &str) -> Result<String, InterpolationError> {
        Interpolation::new(&env).interpolate(text)
    }

    #[test]
    fn variables_defaults_and_dollars() {
        assert_eq!(expand("${DIR}/app.log").unwrap(), "/var/log/app.log");
        assert_eq!(expand("a${DIR}b${DIR}").unwrap(), "a/var/logb/var/log");
        assert_eq!(expand("${NONE:-/tmp}/x").unwrap(), "/tmp/x");
        assert_eq!(expand("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(expand("${EMPTY}").unwrap(), "");
        assert_eq!(expand("${DIR:-d}").unwrap(), "/var/log");
        assert_eq!(expand("${NONE:-}").unwrap(), "");
        assert_eq!(expand("$${DIR} $$ $").unwrap(), "${DIR} $ $");
        assert_eq!(expand("abc$ $DIR (?-m:$)").unwrap(), "abc$ $DIR (?-m:$)");
        assert_eq!(expand("no dollar").unwrap(), "no dollar");
    }

    #[test]
    fn every_refusal() {
        use InterpolationError::*;
        assert_eq!(expand("${DIR"), Err(Unclosed));
        assert_eq!(expand("x${"), Err(Unclosed));
        assert_eq!(expand("${}"), Err(EmptyName));
        assert_eq!(expand("${:-x}"), Err(EmptyName));
        assert_eq!(expand("${A-B}"), Err(BadName("A-B".into())));
        assert_eq!(expand("${1A}"), Err(BadName("1A".into())));
        assert_eq!(expand("${NONE}"), Err(Unset("NONE".into())));
        assert_eq!(expand("${BYTES}"), Err(NotUnicode("BYTES".into())));
    }

    #[test]
    fn inserted_values_are_concealed_in_errors_and_not_in_debug() {
        let mut interpolation = Interpolation::new(&env);
        interpolation
            .interpolate("${DIR}/a ${NONE:-default}")
            .unwrap();
        let concealed = interpolation.into_concealed();
        let error = ConfigError::new("/var/log/c.yaml", "cannot read /var/log/a");
        let error = concealed.conceal(error);
        assert_eq!(error.to_string(), "/var/log/c.yaml: cannot read ${DIR}/a");
        assert_eq!(format!("{concealed:?}"), "Concealed(1 values)");
    }

    #[test]
    fn field_names() {
        use Step::{Index, Key};
        assert_eq!(
            field_name(&[Key("rules"), Index(2), Key("mask")]),
            "rules[2].mask"
        );
        assert_eq!(field_name(&[Key("audit"), Key("path")]), "audit.path");
    }
}
