//! Amazon Macie: one `CreateCustomDataIdentifier` request body per rule
//! (the `macie2` API), each within the limits the API documents.
//!
//! A custom data identifier has no confidence per occurrence: its keywords
//! filter (an occurrence is reported only with a keyword before it, within
//! `maximumMatchDistance` of its end). So each identifier reports what
//! logredact rates high — a keyword nearby — and its findings are HIGH
//! severity from the first occurrence; a rule without keywords reports every
//! match, MEDIUM. Placeholder values are ignore words where they can be
//! listed. What this leaves out is in the notes.
//!
//! The output is `{"customDataIdentifiers": [request, …], "notes": […]}`.

use serde::Serialize;

use crate::export::dialect::{self, Dialect, Inexpressible};
use crate::export::{Format, Note, NoteCode, Prepared, RuleExport};

/// Limits, as the API documents them (`macie2`, `CreateCustomDataIdentifier`).
const MAX_NAME_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 512;
const MAX_REGEX_CHARS: usize = 512;
const MAX_KEYWORDS: usize = 50;
const KEYWORD_CHARS: std::ops::RangeInclusive<usize> = 3..=90;
const MAX_IGNORE_WORDS: usize = 10;
const IGNORE_WORD_CHARS: std::ops::RangeInclusive<usize> = 4..=90;
const MATCH_DISTANCE: std::ops::RangeInclusive<usize> = 1..=300;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'a> {
    custom_data_identifiers: Vec<Request>,
    notes: &'a [Note],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    name: String,
    description: String,
    regex: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keywords: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignore_words: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_match_distance: Option<usize>,
    severity_levels: Vec<SeverityLevel>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeverityLevel {
    occurrences_threshold: u64,
    severity: &'static str,
}

/// The rule's keywords as Macie takes them, with a note for each left out.
fn keywords(id: &str, terms: &[String], notes: &mut Vec<Note>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for term in terms {
        let chars = term.chars().count();
        if !KEYWORD_CHARS.contains(&chars) {
            notes.push(Note::rule(
                id,
                NoteCode::TermLeftOut,
                format!(
                    "the keyword '{term}' is left out: Macie takes keywords of {} to {} characters",
                    KEYWORD_CHARS.start(),
                    KEYWORD_CHARS.end()
                ),
            ));
        } else if !kept.iter().any(|k| k.eq_ignore_ascii_case(term)) {
            kept.push(term.clone());
        }
    }
    if kept.len() > MAX_KEYWORDS {
        let left: Vec<String> = kept.split_off(MAX_KEYWORDS);
        notes.push(Note::rule(
            id,
            NoteCode::TermLeftOut,
            format!(
                "Macie takes at most {MAX_KEYWORDS} keywords: {} are left out ({})",
                left.len(),
                left.join(", ")
            ),
        ));
    }
    kept
}

fn identifier(prepared: &Prepared<'_>) -> RuleExport<Request> {
    let spec = prepared.spec;
    let id = &spec.id;
    if id.chars().count() > MAX_NAME_CHARS {
        return RuleExport::Refused(format!(
            "its id is longer than {MAX_NAME_CHARS} characters, the longest name Macie takes"
        ));
    }
    let regex = match dialect::print(&prepared.node, Dialect::Pcre) {
        Ok(regex) => regex,
        Err(Inexpressible(reason)) => return RuleExport::Refused(reason),
    };
    let chars = regex.chars().count();
    if chars > MAX_REGEX_CHARS {
        return RuleExport::Refused(format!(
            "written for Macie it is {chars} characters long; the limit is {MAX_REGEX_CHARS}"
        ));
    }
    let mut notes = Vec::new();
    let keywords = if spec.window == 0 {
        if !spec.keywords.is_empty() {
            notes.push(Note::rule(
                id,
                NoteCode::TermLeftOut,
                "the window is 0: logredact never finds the keywords, so they are left out"
                    .to_string(),
            ));
        }
        Vec::new()
    } else {
        keywords(id, &spec.keywords, &mut notes)
    };
    let mut maximum_match_distance = None;
    if !keywords.is_empty() {
        // Macie measures from the keyword's end to the match's end;
        // logredact's window ends where the match begins.
        let wanted = spec.window + prepared.min_len;
        let distance = wanted.clamp(*MATCH_DISTANCE.start(), *MATCH_DISTANCE.end());
        maximum_match_distance = Some(distance);
        let exact = prepared.max_len == prepared.min_len && wanted == distance;
        if !exact {
            let before = |len: usize| distance.saturating_sub(len);
            let reach = if prepared.max_len == prepared.min_len {
                format!(
                    "up to {} characters before a match (of {} characters)",
                    before(prepared.min_len),
                    prepared.min_len
                )
            } else {
                format!(
                    "up to {} to {} characters before a match (of {} to {} characters)",
                    before(prepared.max_len),
                    before(prepared.min_len),
                    prepared.min_len,
                    prepared.max_len
                )
            };
            notes.push(Note::rule(
                id,
                NoteCode::KeywordDistanceToMatchEnd,
                format!(
                    "Macie measures a keyword's distance from its end to the end of the match, at most 300 characters: with maximumMatchDistance {distance}, a keyword counts {reach}; logredact looks {} characters before the match",
                    spec.window
                ),
            ));
        }
        notes.push(Note::rule(
            id,
            NoteCode::KeywordsBeforeOnly,
            format!(
                "Macie reports a match only with a keyword before it: a match with a keyword only after it (within {} characters) is high for logredact and not reported by Macie",
                spec.window
            ),
        ));
        notes.push(Note::rule(
            id,
            NoteCode::MediumNotReported,
            "Macie reports only matches with a keyword before them: what logredact rates medium (no keyword nearby) is not reported, though logredact masks it; remove the keywords from the request to report every match".to_string(),
        ));
        notes.push(Note::rule(
            id,
            NoteCode::KeywordSubstring,
            "Macie does not document keywords as whole words: a keyword inside a longer word ('pat' in 'path') may count for Macie, never for logredact".to_string(),
        ));
    }
    if spec.window > 0 && !spec.exclusions.is_empty() {
        notes.push(Note::rule(
            id,
            NoteCode::ContextExclusions,
            format!(
                "exclusion terms ({}) cannot be expressed: Macie's ignore words apply to the matched text, not the text around it; a match near one is low for logredact, reported by Macie",
                spec.exclusions.join(", ")
            ),
        ));
    }
    let mut ignore_words = Vec::new();
    match dialect::placeholder_values(&prepared.node, &prepared.prefixes) {
        Ok(values) => {
            let (fits, misfits): (Vec<String>, Vec<String>) = values
                .listed
                .into_iter()
                .partition(|word| IGNORE_WORD_CHARS.contains(&word.chars().count()));
            let mut unlisted = values.unlisted;
            if !misfits.is_empty() {
                unlisted.push(format!(
                    "{} value(s) whose length is not {} to {} characters",
                    misfits.len(),
                    IGNORE_WORD_CHARS.start(),
                    IGNORE_WORD_CHARS.end()
                ));
            }
            let mut fits = fits;
            if fits.len() > MAX_IGNORE_WORDS {
                let left = fits.split_off(MAX_IGNORE_WORDS);
                let firsts: Vec<String> = left
                    .iter()
                    .filter_map(|word| word.chars().next())
                    .map(|c| format!("'{c}'"))
                    .collect();
                unlisted.push(format!(
                    "{} of one character repeated ({}), as Macie takes at most {MAX_IGNORE_WORDS} ignore words",
                    left.len(),
                    firsts.join(", ")
                ));
            }
            ignore_words = fits;
            if !unlisted.is_empty() {
                notes.push(Note::rule(
                    id,
                    NoteCode::PlaceholdersPartly,
                    format!(
                        "some placeholder values are not ignore words: {}; logredact rates them low, Macie reports them",
                        unlisted.join("; ")
                    ),
                ));
            }
        }
        Err(Inexpressible(reason)) => notes.push(Note::rule(
            id,
            NoteCode::Placeholders,
            format!(
                "placeholder values are not ignore words: {reason}; logredact rates them low, Macie reports them"
            ),
        )),
    }
    if dialect::matches_non_ascii(&prepared.node) {
        notes.push(Note::rule(
            id,
            NoteCode::NonAsciiClass,
            crate::export::gcp::non_ascii_class_message(),
        ));
    }
    let severity = if keywords.is_empty() {
        "MEDIUM"
    } else {
        "HIGH"
    };
    let mut description = if keywords.is_empty() {
        format!("logredact rule '{id}': every match (logredact masks every match).")
    } else {
        format!(
            "logredact rule '{id}': matches with a keyword before them, which logredact rates high."
        )
    };
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        description = "A logredact rule.".to_string();
    }
    RuleExport::Exported {
        value: Request {
            name: id.clone(),
            description,
            regex,
            keywords,
            ignore_words,
            maximum_match_distance,
            severity_levels: vec![SeverityLevel {
                occurrences_threshold: 1,
                severity,
            }],
        },
        notes,
    }
}

/// The request bodies, as JSON.
pub(crate) fn export(
    rules: &[Prepared<'_>],
    notes: &mut Vec<Note>,
) -> Option<(Vec<u8>, Vec<String>)> {
    let mut requests = Vec::new();
    let mut exported = Vec::new();
    for prepared in rules {
        match identifier(prepared) {
            RuleExport::Exported { value, notes: own } => {
                notes.extend(own);
                exported.push(prepared.spec.id.clone());
                requests.push(value);
            }
            RuleExport::Refused(reason) => {
                notes.push(Note::refused(&prepared.spec.id, Format::Macie, &reason));
            }
        }
    }
    if requests.is_empty() {
        return None;
    }
    let output = Output {
        custom_data_identifiers: requests,
        notes,
    };
    let mut bytes = serde_json::to_vec_pretty(&output).unwrap_or_default();
    bytes.push(b'\n');
    Some((bytes, exported))
}
