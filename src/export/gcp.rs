//! Google Cloud DLP (Sensitive Data Protection): an `InspectTemplate`, as
//! the REST API takes it (`projects.inspectTemplates.create`), with one
//! custom info type per rule.
//!
//! - the rule's pattern in RE2, whose `\b` is ASCII like logredact's;
//! - base likelihood `POSSIBLE` (logredact's medium), raised to `LIKELY`
//!   (high) by a hotword rule that finds a keyword, as a whole word, within
//!   the window before or after the finding;
//! - a rule set that excludes a finding with an exclusion term within the
//!   window, or whose text is a placeholder value: what logredact rates low.
//!
//! The output is `{"inspectTemplate": …, "notes": […]}`: the template is
//! the request body's `inspectTemplate`, the notes say what the template
//! cannot express.

use serde::Serialize;

use crate::export::dialect::{self, Dialect, Inexpressible};
use crate::export::{Format, Note, NoteCode, Prepared, RuleExport, keywords_outside_matches};

/// The largest hotword window: "The total length of the window cannot
/// exceed 1000 characters" (the API's `Proximity`), before and after.
const MAX_WINDOW_SIDE: usize = 500;
/// Info type names, as the API documents them: `[A-Za-z0-9$_-]{1,64}`.
const MAX_NAME_CHARS: usize = 64;

const MEDIUM: &str = "POSSIBLE";
const HIGH: &str = "LIKELY";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'a> {
    inspect_template: InspectTemplate,
    notes: &'a [Note],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectTemplate {
    display_name: String,
    description: String,
    inspect_config: InspectConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectConfig {
    custom_info_types: Vec<CustomInfoType>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rule_set: Vec<InspectionRuleSet>,
    min_likelihood: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomInfoType {
    info_type: InfoType,
    likelihood: &'static str,
    regex: Regex,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    detection_rules: Vec<DetectionRule>,
}

#[derive(Serialize, Clone)]
struct InfoType {
    name: String,
}

#[derive(Serialize, Clone)]
struct Regex {
    pattern: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetectionRule {
    hotword_rule: HotwordRule,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HotwordRule {
    hotword_regex: Regex,
    proximity: Proximity,
    likelihood_adjustment: LikelihoodAdjustment,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct Proximity {
    window_before: usize,
    window_after: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LikelihoodAdjustment {
    fixed_likelihood: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectionRuleSet {
    info_types: Vec<InfoType>,
    rules: Vec<InspectionRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectionRule {
    exclusion_rule: ExclusionRule,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExclusionRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    exclude_by_hotword: Option<ExcludeByHotword>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<Regex>,
    matching_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExcludeByHotword {
    hotword_regex: Regex,
    proximity: Proximity,
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"$_-".contains(&b))
}

fn info_type(prepared: &Prepared<'_>) -> RuleExport<(CustomInfoType, Option<InspectionRuleSet>)> {
    let spec = prepared.spec;
    let id = &spec.id;
    if !valid_name(id) {
        return RuleExport::Refused(format!(
            "its id is not a valid info type name ([A-Za-z0-9$_-], 1 to {MAX_NAME_CHARS} characters): rename the rule"
        ));
    }
    let pattern = match dialect::print(&prepared.node, Dialect::Re2) {
        Ok(pattern) => pattern,
        Err(Inexpressible(reason)) => return RuleExport::Refused(reason),
    };
    let mut notes = Vec::new();
    let window = spec.window.min(MAX_WINDOW_SIDE);
    if spec.window > MAX_WINDOW_SIDE {
        notes.push(Note::rule(
            id,
            NoteCode::WindowShortened,
            format!(
                "the window of {} characters is cut to {MAX_WINDOW_SIDE} before and after: a hotword window is at most 1000 characters in all",
                spec.window
            ),
        ));
    }
    let proximity = Proximity {
        window_before: window,
        window_after: window,
    };
    let with_terms = window > 0;
    let has_terms = !spec.keywords.is_empty() || !spec.exclusions.is_empty();
    if !with_terms && has_terms {
        notes.push(Note::rule(
            id,
            NoteCode::TermLeftOut,
            "the window is 0: logredact never finds the keywords and exclusion terms, so they are left out".to_string(),
        ));
    }
    let keywords = keywords_outside_matches(prepared, "Cloud DLP", &mut notes);
    let mut detection_rules = Vec::new();
    if with_terms && !keywords.is_empty() {
        detection_rules.push(DetectionRule {
            hotword_rule: HotwordRule {
                hotword_regex: Regex {
                    pattern: dialect::terms_re2(&keywords),
                },
                proximity,
                likelihood_adjustment: LikelihoodAdjustment {
                    fixed_likelihood: HIGH,
                },
            },
        });
    }
    let mut rules = Vec::new();
    if with_terms && !spec.exclusions.is_empty() {
        rules.push(InspectionRule {
            exclusion_rule: ExclusionRule {
                exclude_by_hotword: Some(ExcludeByHotword {
                    hotword_regex: Regex {
                        pattern: dialect::terms_re2(&spec.exclusions),
                    },
                    proximity,
                }),
                regex: None,
                matching_type: "MATCHING_TYPE_PARTIAL_MATCH",
            },
        });
    }
    match dialect::placeholder_full_match_re2(&prepared.node, &prepared.prefixes) {
        Ok(placeholder) => rules.push(InspectionRule {
            exclusion_rule: ExclusionRule {
                exclude_by_hotword: None,
                regex: Some(Regex {
                    pattern: placeholder,
                }),
                matching_type: "MATCHING_TYPE_FULL_MATCH",
            },
        }),
        Err(Inexpressible(reason)) => notes.push(Note::rule(
            id,
            NoteCode::Placeholders,
            format!(
                "placeholder values are not excluded: {reason}; logredact rates them low, Cloud DLP like any other match"
            ),
        )),
    }
    if dialect::matches_non_ascii(&prepared.node) {
        notes.push(Note::rule(
            id,
            NoteCode::NonAsciiClass,
            non_ascii_class_message(),
        ));
    }
    let name = InfoType { name: id.clone() };
    let rule_set = (!rules.is_empty()).then(|| InspectionRuleSet {
        info_types: vec![name.clone()],
        rules,
    });
    RuleExport::Exported {
        value: (
            CustomInfoType {
                info_type: name,
                likelihood: MEDIUM,
                regex: Regex { pattern },
                detection_rules,
            },
            rule_set,
        ),
        notes,
    }
}

/// The note for a class that matches any non-ASCII character.
pub(crate) fn non_ascii_class_message() -> String {
    "a class of the pattern (a negated class, or .) matches one non-ASCII character where logredact matches one byte: a match over non-ASCII text can be longer in characters there".to_string()
}

/// The template, as JSON.
pub(crate) fn export(
    rules: &[Prepared<'_>],
    notes: &mut Vec<Note>,
) -> Option<(Vec<u8>, Vec<String>)> {
    let mut custom_info_types = Vec::new();
    let mut rule_set = Vec::new();
    let mut exported = Vec::new();
    for prepared in rules {
        match info_type(prepared) {
            RuleExport::Exported {
                value: (custom, rules),
                notes: own,
            } => {
                notes.extend(own);
                exported.push(prepared.spec.id.clone());
                custom_info_types.push(custom);
                rule_set.extend(rules);
            }
            RuleExport::Refused(reason) => {
                notes.push(Note::refused(&prepared.spec.id, Format::GcpDlp, &reason));
            }
        }
    }
    if custom_info_types.is_empty() {
        return None;
    }
    if rules.iter().any(|r| !r.spec.exclusions.is_empty()) || !rule_set.is_empty() {
        notes.push(Note::general(
            NoteCode::LowIsExcluded,
            "what logredact rates low (an exclusion term within the window, a placeholder value) is excluded: Cloud DLP does not report it, logredact still masks it".to_string(),
        ));
    }
    if rules
        .iter()
        .any(|r| !(r.spec.keywords.is_empty() && r.spec.exclusions.is_empty()))
    {
        notes.push(Note::general(
            NoteCode::WindowHoldsMatch,
            "a hotword window holds the finding itself: a keyword or exclusion term inside the matched text counts for Cloud DLP, never for logredact".to_string(),
        ));
    }
    let template = InspectTemplate {
        display_name: "logredact rules".to_string(),
        description: format!(
            "{} logredact rule(s): LIKELY = high, POSSIBLE = medium; low is excluded.",
            exported.len()
        ),
        inspect_config: InspectConfig {
            custom_info_types,
            rule_set,
            min_likelihood: MEDIUM,
        },
    };
    let output = Output {
        inspect_template: template,
        notes,
    };
    let mut bytes = serde_json::to_vec_pretty(&output).unwrap_or_default();
    bytes.push(b'\n');
    Some((bytes, exported))
}
