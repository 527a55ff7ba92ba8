//! Rules: what a secret looks like and what happens when one is found.
//!
//! A [`RuleSpec`] is a rule as written in the configuration; a [`RuleSet`] is
//! every rule compiled into one multi-pattern DFA (so each byte is examined
//! once for all rules), with the per-rule data the scanner needs after a
//! match: mask, window, keywords, exclusions and allow-list.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::prefilter::Prefilter;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind, PatternID};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, Look};

use crate::scan::classify::{Classifier, TermError, is_placeholder};
use crate::scan::fingerprint::{Fingerprint, FingerprintKey};
use crate::scan::mask::{Mask, MaskError};

/// The longest match any rule may have, in bytes (SPEC §1). Bounding it bounds
/// the bytes held back per stream.
pub const MAX_MATCH_LEN: usize = 256;

/// The default context window, in characters (SPEC §4).
pub const DEFAULT_WINDOW: usize = 300;

/// The largest context window a rule may ask for, in characters.
pub const MAX_WINDOW: usize = 4096;

/// Memory the compiled DFA may use before the rule set is refused as too
/// complex.
const DFA_SIZE_LIMIT: usize = 64 << 20;

/// A rule as written in the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Unique id, reported in audit records and metrics.
    pub id: String,
    /// Regular expression over bytes; `\b` and classes are ASCII.
    pub pattern: String,
    /// Replacement for each match; may contain `{fingerprint}`.
    pub mask: String,
    /// Context window on each side of a match, in characters.
    pub window: usize,
    /// Corroborating terms (whole words, case-insensitive).
    pub keywords: Vec<String>,
    /// Terms that lower the confidence (whole words, case-insensitive).
    pub exclusions: Vec<String>,
    /// Values that are let through unmasked: exact values, or
    /// `fingerprint:<16 hex digits>`.
    pub allow: Vec<String>,
}

impl RuleSpec {
    /// A rule with the given id and pattern and default everything else: mask
    /// `****`, a 300-character window, no terms, no allow-list.
    pub fn new(id: impl Into<String>, pattern: impl Into<String>) -> RuleSpec {
        RuleSpec {
            id: id.into(),
            pattern: pattern.into(),
            mask: "****".into(),
            window: DEFAULT_WINDOW,
            keywords: Vec::new(),
            exclusions: Vec::new(),
            allow: Vec::new(),
        }
    }
}

impl fmt::Debug for RuleSpec {
    // Allow-list entries may be real values; print only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSpec")
            .field("id", &self.id)
            .field("pattern", &self.pattern)
            .field("mask", &self.mask)
            .field("window", &self.window)
            .field("keywords", &self.keywords)
            .field("exclusions", &self.exclusions)
            .field("allow", &format_args!("[{} entries]", self.allow.len()))
            .finish()
    }
}

/// Why a rule set was refused. Every variant names the rule at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No rule at all: nothing would ever be masked.
    #[error("no rules: at least one rule is needed, or nothing would be masked")]
    NoRules,
    /// An empty id.
    #[error("rule #{index}: the id is empty")]
    EmptyId {
        /// Position of the rule in the list, 1-based.
        index: usize,
    },
    /// Two rules with the same id.
    #[error("rule '{id}': duplicate rule id")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// The pattern does not parse.
    #[error("rule '{id}': invalid pattern: {message}")]
    InvalidPattern {
        /// The rule.
        id: String,
        /// The regex engine's message.
        message: String,
    },
    /// The pattern has no maximum match length.
    #[error(
        "rule '{id}': the pattern can match unboundedly long text; bound every repetition (e.g. {{1,64}} instead of + or *) so that a match is at most {MAX_MATCH_LEN} bytes"
    )]
    Unbounded {
        /// The rule.
        id: String,
    },
    /// The pattern's maximum match length is over the limit.
    #[error(
        "rule '{id}': the pattern can match up to {max_len} bytes; the limit is {MAX_MATCH_LEN}"
    )]
    TooLong {
        /// The rule.
        id: String,
        /// The pattern's longest possible match.
        max_len: usize,
    },
    /// The pattern can match the empty string.
    #[error("rule '{id}': the pattern can match the empty string")]
    MatchesEmpty {
        /// The rule.
        id: String,
    },
    /// The pattern uses a Unicode word boundary, which a streaming DFA cannot decide.
    #[error("rule '{id}': Unicode word boundaries ((?u:\\b)) are not supported; use the ASCII \\b")]
    UnicodeWordBoundary {
        /// The rule.
        id: String,
    },
    /// The pattern uses `^`, `$`, `\A` or `\z` outside multi-line mode: a
    /// stream has no start or end of text to anchor to.
    #[error(
        "rule '{id}': the pattern is anchored at the start or end of the text (^, $, \\A or \\z), which a stream does not have; use (?m)^ and (?m)$ for the start and end of a line"
    )]
    TextAnchor {
        /// The rule.
        id: String,
    },
    /// The mask template is invalid.
    #[error("rule '{id}': {source}")]
    Mask {
        /// The rule.
        id: String,
        /// What is wrong with the mask.
        source: MaskError,
    },
    /// A keyword or exclusion term is invalid.
    #[error("rule '{id}': {source}")]
    Terms {
        /// The rule.
        id: String,
        /// What is wrong with the terms.
        source: TermError,
    },
    /// The window is out of range.
    #[error("rule '{id}': window {window} is out of range (0 to {MAX_WINDOW} characters)")]
    Window {
        /// The rule.
        id: String,
        /// The requested window.
        window: usize,
    },
    /// An allow-list entry is malformed.
    #[error("rule '{id}': allow-list entry #{index}: {message}")]
    Allow {
        /// The rule.
        id: String,
        /// Position of the entry, 1-based.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The rules together make a DFA that is too large or cannot be built.
    #[error("the rules cannot be compiled together: {message}")]
    Compile {
        /// The engine's message.
        message: String,
    },
}

impl RuleError {
    /// The id of the rule at fault, if the error is about one rule.
    pub fn rule_id(&self) -> Option<&str> {
        match self {
            RuleError::DuplicateId { id }
            | RuleError::InvalidPattern { id, .. }
            | RuleError::Unbounded { id }
            | RuleError::TooLong { id, .. }
            | RuleError::MatchesEmpty { id }
            | RuleError::UnicodeWordBoundary { id }
            | RuleError::TextAnchor { id }
            | RuleError::Mask { id, .. }
            | RuleError::Terms { id, .. }
            | RuleError::Window { id, .. }
            | RuleError::Allow { id, .. } => Some(id),
            RuleError::NoRules | RuleError::EmptyId { .. } | RuleError::Compile { .. } => None,
        }
    }
}

/// Values of one rule that are let through unmasked.
#[derive(Default)]
pub(crate) struct AllowList {
    values: HashSet<Vec<u8>>,
    fingerprints: HashSet<Fingerprint>,
}

impl AllowList {
    fn parse(id: &str, entries: &[String]) -> Result<AllowList, RuleError> {
        let mut list = AllowList::default();
        for (i, entry) in entries.iter().enumerate() {
            if let Some(hex) = entry.strip_prefix("fingerprint:") {
                let fingerprint =
                    hex.parse()
                        .map_err(|e: crate::scan::fingerprint::ParseFingerprintError| {
                            RuleError::Allow {
                                id: id.to_string(),
                                index: i + 1,
                                message: e.to_string(),
                            }
                        })?;
                list.fingerprints.insert(fingerprint);
            } else if entry.is_empty() {
                return Err(RuleError::Allow {
                    id: id.to_string(),
                    index: i + 1,
                    message: "empty value".into(),
                });
            } else {
                list.values.insert(entry.as_bytes().to_vec());
            }
        }
        Ok(list)
    }

    /// Whether `value` is allowed; `fingerprint` is computed only if the
    /// list has fingerprint entries.
    fn allows(&self, value: &[u8], fingerprint: impl FnOnce() -> Fingerprint) -> bool {
        (!self.values.is_empty() && self.values.contains(value))
            || (!self.fingerprints.is_empty() && self.fingerprints.contains(&fingerprint()))
    }
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AllowList {{ values: {}, fingerprints: {} }}",
            self.values.len(),
            self.fingerprints.len()
        )
    }
}

/// One compiled rule: everything needed once its pattern has matched.
pub(crate) struct Rule {
    pub(crate) id: Arc<str>,
    pub(crate) mask: Mask,
    pub(crate) window: usize,
    /// Every match has this length, so its start is known from its end
    /// without a reverse scan.
    pub(crate) fixed_len: Option<usize>,
    /// Literal prefixes of the pattern; the value checked for placeholders is
    /// the match without the longest of them it starts with.
    literal_prefixes: Vec<Vec<u8>>,
    pub(crate) classifier: Classifier,
    allow: AllowList,
}

impl Rule {
    pub(crate) fn allows(&self, value: &[u8], fingerprint: impl FnOnce() -> Fingerprint) -> bool {
        self.allow.allows(value, fingerprint)
    }

    pub(crate) fn is_placeholder(&self, matched: &[u8]) -> bool {
        let prefix_len = self
            .literal_prefixes
            .iter()
            .filter(|prefix| matched.starts_with(prefix))
            .map(|prefix| prefix.len())
            .max()
            .unwrap_or(0);
        is_placeholder(&matched[prefix_len..])
    }
}

/// Every rule of a configuration compiled into one automaton.
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    specs: Vec<RuleSpec>,
    /// Unanchored leftmost-first DFA over all patterns: finds where each match
    /// ends, in one pass.
    pub(crate) forward: dense::DFA<Vec<u32>>,
    /// Per rule, an anchored reverse DFA that finds where a variable-length
    /// match begins (`None` for fixed-length rules). One small DFA per rule
    /// rather than one for all: a shared reverse DFA needs an all-patterns
    /// start state that is never used and can be megabytes.
    reverse: Vec<Option<dense::DFA<Vec<u32>>>>,
    /// Finds the literal prefixes of all rules at memory speed while no match
    /// is in progress.
    pub(crate) prefilter: Option<Prefilter>,
    /// Whether the prefilter looks for one literal (a `memmem` search, whose
    /// fixed cost per call is small enough to pay even on dense input).
    pub(crate) prefilter_is_single_literal: bool,
    /// Match states from which every transition is dead: the match they
    /// report can neither extend nor be outranked, so it is decided at once
    /// instead of one byte later.
    /// Sorted, for a binary search: there are few of them.
    final_matches: Vec<StateID>,
    /// The longest possible match of any rule.
    pub(crate) max_len: usize,
    /// The shortest possible match of any rule (at least 1: a rule that
    /// matches the empty string is refused). A text shorter than this holds
    /// no match.
    pub(crate) min_len: usize,
    /// The largest window of any rule, in characters.
    pub(crate) max_window: usize,
    pub(crate) key: FingerprintKey,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.specs)
            .field("max_len", &self.max_len)
            .field("prefilter", &self.prefilter.is_some())
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// Compiles rules; fingerprints (and `{fingerprint}` masks) use `key`.
    ///
    /// ```
    /// use logredact::{FingerprintKey, RuleSet, RuleSpec};
    /// let rules = RuleSet::new(vec![RuleSpec::new("aws", r"\bAKIA[0-9A-Z]{16}\b")], FingerprintKey::derive(b"k"))?;
    /// assert_eq!(rules.ids().collect::<Vec<_>>(), ["aws"]);
    ///
    /// let err = RuleSet::new(vec![RuleSpec::new("greedy", r"key=.*")], FingerprintKey::derive(b"k")).unwrap_err();
    /// assert!(err.to_string().starts_with("rule 'greedy': the pattern can match unboundedly long text"));
    /// # Ok::<(), logredact::RuleError>(())
    /// ```
    pub fn new(specs: Vec<RuleSpec>, key: FingerprintKey) -> Result<RuleSet, RuleError> {
        if specs.is_empty() {
            return Err(RuleError::NoRules);
        }
        let mut seen = HashSet::new();
        let mut hirs = Vec::with_capacity(specs.len());
        let mut rules = Vec::with_capacity(specs.len());
        let mut max_len = 0;
        let mut max_window = 0;
        for (index, spec) in specs.iter().enumerate() {
            let (rule, hir, len) = compile_rule(index, spec)?;
            if !seen.insert(spec.id.as_str()) {
                return Err(RuleError::DuplicateId {
                    id: spec.id.clone(),
                });
            }
            max_len = max_len.max(len);
            max_window = max_window.max(spec.window);
            hirs.push(hir);
            rules.push(rule);
        }
        let compile_error = |e: &dyn fmt::Display| RuleError::Compile {
            message: e.to_string(),
        };
        let nfa_config = thompson::Config::new()
            .utf8(false)
            .which_captures(WhichCaptures::None);
        let nfa = thompson::Compiler::new()
            .configure(nfa_config.clone())
            .build_many_from_hir(&hirs)
            .map_err(|e| compile_error(&e))?;
        let forward = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .start_kind(StartKind::Unanchored)
                    .specialize_start_states(true)
                    .accelerate(false)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .build_from_nfa(&nfa)
            .map_err(|e| compile_error(&e))?;
        let reverse = rules
            .iter()
            .zip(&hirs)
            .map(|(rule, hir)| match rule.fixed_len {
                Some(_) => Ok(None),
                None => reverse_dfa(hir, &nfa_config).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| compile_error(&e))?;
        let prefilter = Prefilter::from_hirs_prefix(MatchKind::LeftmostFirst, &hirs);
        // `None`: a rule that can never match; it lowers nothing.
        let min_len = hirs
            .iter()
            .filter_map(|hir| hir.properties().minimum_len())
            .min()
            .unwrap_or(1)
            .max(1);
        let mut literals: Vec<&[u8]> = rules
            .iter()
            .flat_map(|rule| rule.literal_prefixes.iter().map(Vec::as_slice))
            .collect();
        literals.sort_unstable();
        literals.dedup();
        let prefilter_is_single_literal = literals.len() == 1;
        let final_matches = final_match_states(&forward);
        Ok(RuleSet {
            rules,
            specs,
            final_matches,
            forward,
            reverse,
            prefilter,
            prefilter_is_single_literal,
            max_len,
            min_len,
            max_window,
            key,
        })
    }

    /// The rule ids, in priority order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.specs.iter().map(|spec| spec.id.as_str())
    }

    /// The rules as they were given.
    pub fn specs(&self) -> &[RuleSpec] {
        &self.specs
    }

    /// The longest match of any rule, in bytes: a stream never holds back more
    /// than this plus one byte.
    pub fn max_match_len(&self) -> usize {
        self.max_len
    }

    /// Bytes of recent history a stream keeps to rebuild any detection's
    /// context: a whole window of 4-byte characters plus the held-back bytes.
    pub fn context_bytes(&self) -> usize {
        4 * self.max_window + self.max_len + 8
    }

    /// Unanchored start state for a search whose previous byte is `look_behind`.
    pub(crate) fn forward_start(&self, look_behind: Option<u8>) -> StateID {
        let config = start::Config::new()
            .anchored(Anchored::No)
            .look_behind(look_behind);
        // An unanchored start state exists for every look-behind: the DFA is
        // built with StartKind::Unanchored and without quit bytes.
        self.forward
            .start_state(&config)
            .unwrap_or_else(|_| unreachable!("unanchored start states are always built"))
    }

    /// Whether the match reported by match state `state` is decided: no
    /// further byte can extend it or produce a match that outranks it.
    pub(crate) fn is_final_match(&self, state: StateID) -> bool {
        self.final_matches.binary_search(&state).is_ok()
    }

    /// Where the match of `pattern` ending at `end` in `bytes` begins, scanning
    /// back no further than `floor`; `look_ahead` is the byte after the match
    /// and `look_behind` the byte before `floor`.
    pub(crate) fn match_start(
        &self,
        pattern: PatternID,
        bytes: &[u8],
        floor: usize,
        end: usize,
        look_ahead: Option<u8>,
        look_behind: Option<u8>,
    ) -> Option<usize> {
        if let Some(len) = self.rules[pattern.as_usize()].fixed_len {
            return end.checked_sub(len).filter(|&start| start >= floor);
        }
        let reverse = self.reverse[pattern.as_usize()].as_ref()?;
        let config = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(look_ahead);
        let mut state = reverse.start_state(&config).ok()?;
        let mut start = None;
        for at in (floor..end).rev() {
            state = reverse.next_state(state, bytes[at]);
            if reverse.is_match_state(state) {
                start = Some(at + 1);
            } else if reverse.is_dead_state(state) {
                return start;
            }
        }
        state = match look_behind {
            Some(byte) => reverse.next_state(state, byte),
            None => reverse.next_eoi_state(state),
        };
        if reverse.is_match_state(state) {
            start = Some(floor);
        }
        start
    }
}

/// An anchored reverse DFA for one pattern, reporting every start (the
/// longest reverse match is the leftmost start).
fn reverse_dfa(hir: &Hir, nfa_config: &thompson::Config) -> Result<dense::DFA<Vec<u32>>, String> {
    let nfa = thompson::Compiler::new()
        .configure(nfa_config.clone().reverse(true))
        .build_from_hir(hir)
        .map_err(|e| e.to_string())?;
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .accelerate(false)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
        )
        .build_from_nfa(&nfa)
        .map_err(|e| e.to_string())
}

/// The match states of `dfa` whose every transition leads to the dead state,
/// found by walking every state reachable from any start state.
fn final_match_states(dfa: &dense::DFA<Vec<u32>>) -> Vec<StateID> {
    let classes: Vec<u8> = dfa
        .byte_classes()
        .representatives(0..=255)
        .filter_map(|unit| unit.as_u8())
        .collect();
    // State ids are premultiplied by the stride: shifting gives an index.
    let index = |state: StateID| state.as_usize() >> dfa.stride2();
    let mut seen: Vec<bool> = Vec::new();
    let visit = |state: StateID, seen: &mut Vec<bool>| {
        let i = index(state);
        if seen.len() <= i {
            seen.resize(i + 1, false);
        }
        !std::mem::replace(&mut seen[i], true)
    };
    let mut todo: Vec<StateID> = Vec::new();
    for look_behind in std::iter::once(None).chain((0..=255u8).map(Some)) {
        let config = start::Config::new()
            .anchored(Anchored::No)
            .look_behind(look_behind);
        if let Ok(state) = dfa.start_state(&config) {
            if visit(state, &mut seen) {
                todo.push(state);
            }
        }
    }
    let mut finals = Vec::new();
    while let Some(state) = todo.pop() {
        let mut all_dead = true;
        for &byte in &classes {
            let next = dfa.next_state(state, byte);
            all_dead &= dfa.is_dead_state(next);
            if visit(next, &mut seen) {
                todo.push(next);
            }
        }
        if dfa.is_match_state(state) && all_dead {
            finals.push(state);
        }
    }
    finals.sort_unstable();
    finals
}

/// Whether `hir` asserts the start or end of the whole text anywhere. A
/// stream is not such a text: a start anchor would hold only on a stream's
/// first bytes (and the scanner is not built for a DFA that dies without a
/// match), an end anchor only on its last, never at the end of a line, so a
/// secret on any other line would pass unmasked.
fn anchors_to_text(hir: &Hir) -> bool {
    let looks = hir.properties().look_set();
    looks.contains(Look::Start) || looks.contains(Look::End)
}

/// A rule's pattern as the scanner reads it: over bytes, with ASCII classes
/// and word boundaries unless the pattern asks for Unicode; or the parser's
/// message.
pub(crate) fn parse_pattern(pattern: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// The literal prefixes of a pattern: every match starts with one of them
/// (none if the pattern has no literal prefix). A match without the longest
/// of them it starts with is the value checked for placeholders.
pub(crate) fn literal_prefixes(hir: &Hir) -> Vec<Vec<u8>> {
    Extractor::new()
        .kind(ExtractKind::Prefix)
        .extract(hir)
        .literals()
        .map(|literals| literals.iter().map(|l| l.as_bytes().to_vec()).collect())
        .unwrap_or_default()
}

fn compile_rule(index: usize, spec: &RuleSpec) -> Result<(Rule, Hir, usize), RuleError> {
    let id = spec.id.clone();
    if id.is_empty() {
        return Err(RuleError::EmptyId { index: index + 1 });
    }
    let hir = parse_pattern(&spec.pattern).map_err(|message| RuleError::InvalidPattern {
        id: id.clone(),
        message,
    })?;
    let properties = hir.properties();
    let max_len = properties
        .maximum_len()
        .ok_or_else(|| RuleError::Unbounded { id: id.clone() })?;
    if max_len > MAX_MATCH_LEN {
        return Err(RuleError::TooLong { id, max_len });
    }
    if properties.minimum_len() == Some(0) {
        return Err(RuleError::MatchesEmpty { id });
    }
    if properties.look_set().contains_word_unicode() {
        return Err(RuleError::UnicodeWordBoundary { id });
    }
    if anchors_to_text(&hir) {
        return Err(RuleError::TextAnchor { id });
    }
    if spec.window > MAX_WINDOW {
        return Err(RuleError::Window {
            id,
            window: spec.window,
        });
    }
    let mask = Mask::parse(&spec.mask).map_err(|source| RuleError::Mask {
        id: id.clone(),
        source,
    })?;
    let classifier =
        Classifier::new(&spec.keywords, &spec.exclusions).map_err(|source| RuleError::Terms {
            id: id.clone(),
            source,
        })?;
    let allow = AllowList::parse(&id, &spec.allow)?;
    let fixed_len = (properties.minimum_len() == Some(max_len)).then_some(max_len);
    let literal_prefixes = literal_prefixes(&hir);
    let rule = Rule {
        id: Arc::from(id),
        mask,
        window: spec.window,
        fixed_len,
        literal_prefixes,
        classifier,
        allow,
    };
    Ok((rule, hir, max_len))
}
