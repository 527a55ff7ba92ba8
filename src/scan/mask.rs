//! Mask templates: what a match is replaced with.
//!
//! A mask is literal text with an optional `{fingerprint}` placeholder, so that
//! redacted logs stay correlatable (`dapi****{fingerprint}`). Any other `{name}`
//! is refused when the rules are loaded rather than written out literally,
//! because a typo in a mask should not go unnoticed.

use crate::scan::fingerprint::Fingerprint;

/// A parsed mask template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    parts: Vec<MaskPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MaskPart {
    Text(Vec<u8>),
    Fingerprint,
}

/// Why a mask template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// `{name}` where only `{fingerprint}` is known.
    #[error("unknown placeholder {{{0}}} in mask (the only placeholder is {{fingerprint}})")]
    UnknownPlaceholder(String),
    /// A `{` that is never closed.
    #[error("unclosed '{{' in mask (the only placeholder is {{fingerprint}})")]
    Unclosed,
}

impl Mask {
    /// Parses a template such as `dapi****` or `dapi****{fingerprint}`.
    ///
    /// ```
    /// use logredact::Mask;
    /// assert!(Mask::parse("dapi****{fingerprint}").is_ok());
    /// assert!(Mask::parse("{token}").is_err());
    /// ```
    pub fn parse(template: &str) -> Result<Mask, MaskError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(MaskPart::Text(rest.as_bytes()[..open].to_vec()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(MaskError::Unclosed)?;
            let name = &after[..close];
            if name != "fingerprint" {
                return Err(MaskError::UnknownPlaceholder(name.to_string()));
            }
            parts.push(MaskPart::Fingerprint);
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(MaskPart::Text(rest.as_bytes().to_vec()));
        }
        Ok(Mask { parts })
    }

    /// The mask's bytes when it has no placeholder: the common case, written
    /// without rendering.
    pub(crate) fn as_literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(&[]),
            [MaskPart::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// Appends the mask for a match with fingerprint `fingerprint` to `out`.
    pub(crate) fn render(&self, fingerprint: Fingerprint, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                MaskPart::Text(text) => out.extend_from_slice(text),
                MaskPart::Fingerprint => out.extend_from_slice(&fingerprint.to_hex()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fingerprint::FingerprintKey;

    #[test]
    fn literal_and_placeholder_masks() {
        assert_eq!(
            Mask::parse("dapi****").unwrap().as_literal(),
            Some(&b"dapi****"[..])
        );
        assert_eq!(Mask::parse("").unwrap().as_literal(), Some(&b""[..]));
        let mask = Mask::parse("<{fingerprint}>").unwrap();
        assert_eq!(mask.as_literal(), None);
        let fp = FingerprintKey::derive(b"k").fingerprint(b"v");
        let mut out = Vec::new();
        mask.render(fp, &mut out);
        assert_eq!(out, format!("<{fp}>").into_bytes());
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_refused() {
        assert_eq!(
            Mask::parse("x{token}"),
            Err(MaskError::UnknownPlaceholder("token".into()))
        );
        assert_eq!(Mask::parse("x{fingerprint"), Err(MaskError::Unclosed));
        assert_eq!(
            MaskError::UnknownPlaceholder("t".into()).to_string(),
            "unknown placeholder {t} in mask (the only placeholder is {fingerprint})"
        );
    }
}
