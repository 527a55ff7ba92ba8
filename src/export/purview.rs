//! Microsoft Purview: a rule package, the XML file that
//! `New-DlpSensitiveInformationTypeRulePackage` uploads, in the format and
//! within the constraints of Microsoft's article "Create a custom sensitive
//! information type using PowerShell" (its schema, its "Potential
//! validation issues", and the sensitive information type limits).
//!
//! One `Entity` per rule, with up to three patterns whose confidence levels
//! are logredact's (65 low, 75 medium, 85 high, the levels the article
//! gives for Low, Medium and High):
//!
//! - 85: the regex, a keyword within the window, no exclusion term;
//! - 75: the regex, no exclusion term;
//! - 65: the regex alone.
//!
//! Purview reports the highest level whose pattern a match satisfies, which
//! is logredact's confidence but for placeholder values (Purview cannot
//! test the matched text itself). The entity's recommended confidence is 65:
//! a policy that names no level acts on every match, as logredact masks
//! every match whatever its confidence.
//!
//! GUIDs are derived from the rule ids, so that exporting again gives the
//! same package and uploading it updates the same types.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use crate::export::dialect::{self, Dialect, Inexpressible, Node};
use crate::export::{Format, Note, NoteCode, Prepared, RuleExport, keywords_outside_matches};

/// Regular expressions longer than this are refused (sensitive
/// information type limits).
const MAX_REGEX_CHARS: usize = 1024;
/// Keyword terms longer than this are left out (the article: "Keywords have
/// a maximum of 50 characters in Length").
const MAX_TERM_CHARS: usize = 50;
/// Terms per sensitive information type ("a maximum of 2048 keywords
/// total").
const MAX_TERMS: usize = 2048;
/// Custom sensitive information types per tenant.
const MAX_ENTITIES: usize = 500;
/// The article's suggested largest upload.
const MAX_PACKAGE_BYTES: usize = 770 * 1024;

const LOW: u32 = 65;
const MEDIUM: u32 = 75;
const HIGH: u32 = 85;

/// The `Version` of the rule package: Microsoft 365 deploys an uploaded
/// package only if its version is higher than the one it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackVersion([u16; 4]);

impl Default for PackVersion {
    fn default() -> PackVersion {
        PackVersion([1, 0, 0, 0])
    }
}

impl FromStr for PackVersion {
    type Err = String;

    /// `MAJOR.MINOR.BUILD.REVISION`, each 0 to 65535.
    fn from_str(text: &str) -> Result<PackVersion, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let numbers: Option<Vec<u16>> = parts.iter().map(|part| part.parse().ok()).collect();
        match numbers.as_deref() {
            Some(&[major, minor, build, revision]) => {
                Ok(PackVersion([major, minor, build, revision]))
            }
            _ => Err(format!(
                "'{text}' is not MAJOR.MINOR.BUILD.REVISION (four numbers from 0 to 65535)"
            )),
        }
    }
}

impl fmt::Display for PackVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, build, revision] = self.0;
        write!(f, "{major}.{minor}.{build}.{revision}")
    }
}

/// A GUID derived from `name`: the same name always gives the same GUID.
/// Formatted as an RFC 9562 version 8 (custom) UUID, from a BLAKE3 hash.
pub(crate) fn derived_guid(kind: &str, name: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("logredact export-rules purview GUID v1");
    hasher.update(kind.as_bytes());
    hasher.update(&[0]);
    hasher.update(name.as_bytes());
    let hash = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The regex of a rule as Purview takes it.
fn regex(node: &Node) -> Result<String, Inexpressible> {
    let written = match dialect::flatten(node) {
        Some(sequences) => {
            let mut alternatives = Vec::with_capacity(sequences.len());
            for sequence in &sequences {
                check_ends(sequence)?;
                for group in sequence.iter().flat_map(dialect::nodes_in_groups) {
                    check_in_group(group)?;
                }
                let text = dialect::print_sequence(sequence, Dialect::Boost)?;
                if text.is_empty() {
                    return Err(Inexpressible(
                        "it has an empty alternative, and Purview refuses a regex that begins or ends with |"
                            .into(),
                    ));
                }
                alternatives.push(text);
            }
            alternatives.join("|")
        }
        None => {
            let parts: &[Node] = match node {
                Node::Concat(parts) => parts,
                other => std::slice::from_ref(other),
            };
            check_ends(parts)?;
            for group in dialect::nodes_in_groups(node) {
                check_in_group(group)?;
            }
            dialect::print(node, Dialect::Boost)?
        }
    };
    if dialect::has_unbounded_group(node) {
        return Err(Inexpressible(
            "a group is repeated without bound, which Purview refuses".into(),
        ));
    }
    let chars = written.chars().count();
    if chars > MAX_REGEX_CHARS {
        return Err(Inexpressible(format!(
            "written for Purview it is {chars} characters long; the limit is {MAX_REGEX_CHARS}"
        )));
    }
    Ok(written)
}

/// The article: a regex "cannot begin or end with a .{0,m} pattern" nor
/// with ".{1,m}".
fn check_ends(sequence: &[Node]) -> Result<(), Inexpressible> {
    let consuming = |node: &&Node| !matches!(node, Node::Look(_));
    let ends = [
        sequence.iter().find(consuming),
        sequence.iter().rev().find(consuming),
    ];
    if ends.into_iter().flatten().any(dialect::is_loose_any_repeat) {
        return Err(Inexpressible(
            "it begins or ends with any character repeated from 0 or 1 times (.{0,m}, .{1,m}), which Purview refuses"
                .into(),
        ));
    }
    Ok(())
}

/// The article: a regex "cannot have any character with {0,m} or {1,m}
/// repeaters in groups".
fn check_in_group(node: &Node) -> Result<(), Inexpressible> {
    if dialect::is_loose_character_repeat(node) {
        return Err(Inexpressible(
            "a character repeated from 0 or 1 times ({0,m}, {1,m}, ?, *, +) stands inside a group, which Purview refuses, and the group could not be rewritten away"
                .into(),
        ));
    }
    Ok(())
}

/// Terms as Purview takes them, with a note for each left out or added.
fn terms(rule: &str, list: &[String], what: &str, notes: &mut Vec<Note>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for term in list {
        let chars = term.chars().count();
        if chars > MAX_TERM_CHARS {
            notes.push(Note::rule(
                rule,
                NoteCode::TermLeftOut,
                format!(
                    "the {what} '{term}' is {chars} characters long and is left out: Purview takes terms of at most {MAX_TERM_CHARS}"
                ),
            ));
            continue;
        }
        if !kept.iter().any(|k| k.eq_ignore_ascii_case(term)) {
            kept.push(term.clone());
        }
        // The article: "If you use an ampersand character (&) as part of a
        // keyword ... add an additional term with spaces around the
        // character."
        if term.contains('&') && !term.contains(" & ") {
            let spaced = term.replace('&', " & ");
            if spaced.chars().count() <= MAX_TERM_CHARS
                && !kept.iter().any(|k| k.eq_ignore_ascii_case(&spaced))
            {
                notes.push(Note::rule(
                    rule,
                    NoteCode::TermAdded,
                    format!(
                        "the {what} '{term}' holds '&': the term '{spaced}' is added, as Purview asks"
                    ),
                ));
                kept.push(spaced);
            }
        }
    }
    kept
}

/// An identifier for the rule's processors (`Regex`, `Keyword`): the id
/// with every character but ASCII letters, digits and `_` made `_`.
fn processor_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

/// Text for an XML comment, which may not hold `--`.
fn comment_text(text: &str) -> String {
    let mut out = text.replace("--", "- -");
    while out.contains("--") {
        out = out.replace("--", "- -");
    }
    if out.ends_with('-') {
        out.push(' ');
    }
    out
}

/// What one rule contributes: its entity, its processors, its strings.
struct EntityXml {
    entity: String,
    processors: String,
    resource: String,
}

fn entity(prepared: &Prepared<'_>, names: &mut Vec<String>) -> RuleExport<EntityXml> {
    let spec = prepared.spec;
    let id = &spec.id;
    let mut notes = Vec::new();
    let regex = match regex(&prepared.node) {
        Ok(regex) => regex,
        Err(Inexpressible(reason)) => return RuleExport::Refused(reason),
    };
    if dialect::uses_word_boundaries(&prepared.node) {
        notes.push(Note::rule(
            id,
            NoteCode::WordBoundaryUnicode,
            "Purview's \\b (Boost on Unicode text) counts non-ASCII letters and digits as word characters, logredact's \\b only ASCII ones: a match right after or before such a letter (é, ß, 数) is masked by logredact and not found by Purview".to_string(),
        ));
    }
    let window = spec.window;
    let (keywords, exclusions) = if window == 0 {
        if !spec.keywords.is_empty() || !spec.exclusions.is_empty() {
            notes.push(Note::rule(
                id,
                NoteCode::TermLeftOut,
                "the window is 0: logredact never finds the keywords and exclusion terms, so they are left out".to_string(),
            ));
        }
        (Vec::new(), Vec::new())
    } else {
        let keywords = keywords_outside_matches(prepared, "Purview", &mut notes);
        (
            terms(id, &keywords, "keyword", &mut notes),
            terms(id, &spec.exclusions, "exclusion term", &mut notes),
        )
    };
    if keywords.len() + exclusions.len() > MAX_TERMS {
        return RuleExport::Refused(format!(
            "it has {} keywords and exclusion terms; a Purview type takes at most {MAX_TERMS}",
            keywords.len() + exclusions.len()
        ));
    }
    if !spec.keywords.is_empty() || !spec.exclusions.is_empty() {
        notes.push(Note::rule(
            id,
            NoteCode::WordBoundaryUnicode,
            "keywords and exclusion terms are word matches (matchStyle=\"word\"): Purview counts non-ASCII letters as part of a word, logredact does not, so 'ébearer' has the keyword 'bearer' for logredact only".to_string(),
        ));
    }
    notes.push(Note::rule(
        id,
        NoteCode::Placeholders,
        "placeholder values (one character repeated, 0123456789abcdef repeated) cannot be told apart in Purview, which tests the text around a match, not the match: logredact rates them low, Purview rates them like any other match".to_string(),
    ));

    let mut name = processor_name(id);
    let base = name.clone();
    let mut n = 2;
    while names.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    names.push(name.clone());
    let guid = derived_guid("entity", id);
    let regex_id = format!("Regex_{name}");
    let keyword_id = format!("Keyword_{name}");
    let exclusion_id = format!("Keyword_{name}_exclusions");

    let id_match = format!("        <IdMatch idRef=\"{regex_id}\"/>\n");
    let keyword_match = format!("        <Match idRef=\"{keyword_id}\"/>\n");
    let no_exclusion = format!(
        "        <Any minMatches=\"0\" maxMatches=\"0\">\n          <Match idRef=\"{exclusion_id}\"/>\n        </Any>\n"
    );
    let mut patterns: Vec<(u32, String)> = Vec::new();
    match (keywords.is_empty(), exclusions.is_empty()) {
        (false, false) => {
            patterns.push((HIGH, format!("{id_match}{keyword_match}{no_exclusion}")));
            patterns.push((MEDIUM, format!("{id_match}{no_exclusion}")));
            patterns.push((LOW, id_match.clone()));
        }
        (false, true) => {
            patterns.push((HIGH, format!("{id_match}{keyword_match}")));
            patterns.push((MEDIUM, id_match.clone()));
        }
        (true, false) => {
            patterns.push((MEDIUM, format!("{id_match}{no_exclusion}")));
            patterns.push((LOW, id_match.clone()));
        }
        (true, true) => patterns.push((MEDIUM, id_match.clone())),
    }
    let recommended = patterns
        .iter()
        .map(|(level, _)| *level)
        .min()
        .unwrap_or(MEDIUM);
    let proximity = window.max(1);
    let mut entity = format!(
        "    <!-- {} -->\n    <Entity id=\"{guid}\" patternsProximity=\"{proximity}\" recommendedConfidence=\"{recommended}\">\n",
        comment_text(id)
    );
    for (level, body) in &patterns {
        let _ = write!(
            entity,
            "      <Pattern confidenceLevel=\"{level}\">\n{body}      </Pattern>\n"
        );
    }
    entity.push_str("    </Entity>\n");

    let mut processors = format!(
        "    <Regex id=\"{regex_id}\">{}</Regex>\n",
        escape_text(&regex)
    );
    for (keyword_element, list) in [(&keyword_id, &keywords), (&exclusion_id, &exclusions)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            processors,
            "    <Keyword id=\"{keyword_element}\">\n      <Group matchStyle=\"word\">"
        );
        for term in list {
            let _ = writeln!(processors, "        <Term>{}</Term>", escape_text(term));
        }
        processors.push_str("      </Group>\n    </Keyword>\n");
    }

    let description = match (keywords.is_empty(), exclusions.is_empty()) {
        (true, true) => "logredact's rule: every match at medium confidence (75).".to_string(),
        _ => format!(
            "logredact's rule: high (85) with a keyword within {window} characters and no exclusion term, medium (75) with neither{}.",
            if exclusions.is_empty() {
                ""
            } else {
                ", low (65) with an exclusion term"
            }
        ),
    };
    let resource = format!(
        "      <Resource idRef=\"{guid}\">\n        <Name default=\"true\" langcode=\"en-us\">{}</Name>\n        <Description default=\"true\" langcode=\"en-us\">{}</Description>\n      </Resource>\n",
        escape_text(id),
        escape_text(&description)
    );
    RuleExport::Exported {
        value: EntityXml {
            entity,
            processors,
            resource,
        },
        notes,
    }
}

/// The rule package, as UTF-16 (little-endian, with a byte-order mark): the
/// article asks for the file to be saved "with Unicode encoding".
pub(crate) fn export(
    rules: &[Prepared<'_>],
    version: PackVersion,
    notes: &mut Vec<Note>,
) -> Option<(Vec<u8>, Vec<String>)> {
    let mut names = Vec::new();
    let mut entities = Vec::new();
    let mut exported = Vec::new();
    for prepared in rules {
        match entity(prepared, &mut names) {
            RuleExport::Exported { value, notes: own } => {
                notes.extend(own);
                exported.push(prepared.spec.id.clone());
                entities.push(value);
            }
            RuleExport::Refused(reason) => {
                notes.push(Note::refused(&prepared.spec.id, Format::Purview, &reason));
            }
        }
    }
    if entities.is_empty() {
        return None;
    }
    if rules
        .iter()
        .any(|r| !(r.spec.keywords.is_empty() && r.spec.exclusions.is_empty()))
    {
        notes.push(Note::general(
            NoteCode::WindowHoldsMatch,
            "the proximity window extends to the left and right of the match and holds it: a keyword or exclusion term inside the matched text counts for Purview, never for logredact".to_string(),
        ));
    }
    if entities.len() > MAX_ENTITIES {
        notes.push(Note::general(
            NoteCode::Limit,
            format!(
                "{} sensitive information types: a tenant takes at most {MAX_ENTITIES} custom ones",
                entities.len()
            ),
        ));
    }
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-16\"?>\n");
    let _ = writeln!(
        xml,
        "<!--\n  Exported by logredact export-rules from {} rule(s). Upload with\n  New-DlpSensitiveInformationTypeRulePackage. Microsoft 365 deploys an update\n  only if its Version is higher: export again with a higher package version\n  (the purview-version option of export-rules; this one is {version}).\n\n  Confidence levels: 85 high, 75 medium, 65 low, as logredact rates a match.",
        exported.len()
    );
    let comment_notes: Vec<String> = notes
        .iter()
        .map(|note| format!("  - {}", comment_text(&note.to_string())))
        .collect();
    if !comment_notes.is_empty() {
        xml.push_str(
            "\n  What Purview cannot express (also printed on standard error), [code] first:\n",
        );
        for line in comment_notes {
            xml.push_str(&line);
            xml.push('\n');
        }
    }
    xml.push_str("-->\n");
    let [major, minor, build, revision] = version.0;
    let _ = write!(
        xml,
        "<RulePackage xmlns=\"http://schemas.microsoft.com/office/2011/mce\">\n  <RulePack id=\"{}\">\n    <Version major=\"{major}\" minor=\"{minor}\" build=\"{build}\" revision=\"{revision}\"/>\n    <Publisher id=\"{}\"/>\n    <Details defaultLangCode=\"en-us\">\n      <LocalizedDetails langcode=\"en-us\">\n        <PublisherName>logredact</PublisherName>\n        <Name>logredact rules</Name>\n        <Description>The rules of a logredact configuration, exported by logredact export-rules.</Description>\n      </LocalizedDetails>\n    </Details>\n  </RulePack>\n  <Rules>\n",
        derived_guid("rule pack", "logredact"),
        derived_guid("publisher", "logredact"),
    );
    for entity in &entities {
        xml.push_str(&entity.entity);
    }
    for entity in &entities {
        xml.push_str(&entity.processors);
    }
    xml.push_str("    <LocalizedStrings>\n");
    for entity in &entities {
        xml.push_str(&entity.resource);
    }
    xml.push_str("    </LocalizedStrings>\n  </Rules>\n</RulePackage>\n");
    // The comment above was written before the size was known: a package
    // over the suggested size gets its note on standard error only.
    let mut bytes = vec![0xff, 0xfe];
    for unit in xml.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    if bytes.len() > MAX_PACKAGE_BYTES {
        notes.push(Note::general(
            NoteCode::Limit,
            format!(
                "the package is {} bytes; Microsoft suggests uploading at most {MAX_PACKAGE_BYTES}",
                bytes.len()
            ),
        ));
    }
    Some((bytes, exported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_derived_from_names() {
        let guid = derived_guid("entity", "databricks-pat");
        assert_eq!(guid, derived_guid("entity", "databricks-pat"));
        assert_ne!(guid, derived_guid("entity", "databricks-pat2"));
        assert_ne!(guid, derived_guid("rule pack", "databricks-pat"));
        assert_eq!(guid.len(), 36);
        assert_eq!(&guid[14..15], "8", "version 8: {guid}");
        assert!("89AB".contains(&guid[19..20]), "RFC variant: {guid}");
    }

    #[test]
    fn pack_versions() {
        assert_eq!(
            "1.2.3.4".parse::<PackVersion>().unwrap().to_string(),
            "1.2.3.4"
        );
        assert!("1.2.3".parse::<PackVersion>().is_err());
        assert!("1.2.3.70000".parse::<PackVersion>().is_err());
    }

    #[test]
    fn comments_never_hold_two_dashes() {
        assert_eq!(comment_text("a --- b-"), "a - - - b- ");
    }
}
