//! Classification of a match by its context: keywords, exclusion terms and
//! placeholder values (SPEC §4).
//!
//! Terms are found with one Aho-Corasick automaton per rule, ASCII
//! case-insensitively, and count only as whole words: the bytes on either side
//! of an occurrence must not be ASCII word bytes (the edges of the context
//! count as boundaries), so `PAT` does not fire inside `path`.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::scan::detection::Confidence;

/// The terms of one rule and the automaton that finds them.
pub(crate) struct Classifier {
    /// Keywords first, then exclusion terms; `None` when the rule has neither.
    automaton: Option<AhoCorasick>,
    keywords: Vec<Arc<str>>,
    exclusions: Vec<Arc<str>>,
}

/// Which of a rule's terms have been seen, by index (keywords, then exclusions).
#[derive(Clone, Default)]
pub(crate) struct TermSet {
    words: Vec<u64>,
}

impl TermSet {
    fn insert(&mut self, index: usize) {
        let (word, bit) = (index / 64, index % 64);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << bit;
    }

    fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }
}

/// The outcome of classifying one match.
pub(crate) struct Classification {
    pub(crate) confidence: Confidence,
    pub(crate) keywords: Vec<Arc<str>>,
    pub(crate) exclusions: Vec<Arc<str>>,
}

/// A term that can never be found was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermError {
    /// An empty keyword or exclusion term.
    #[error("empty keyword or exclusion term")]
    Empty,
    /// The automaton could not be built.
    #[error("cannot build the keyword matcher: {0}")]
    Build(String),
}

impl Classifier {
    pub(crate) fn new(keywords: &[String], exclusions: &[String]) -> Result<Classifier, TermError> {
        let lower = |terms: &[String]| -> Result<Vec<Arc<str>>, TermError> {
            terms
                .iter()
                .map(|term| {
                    if term.is_empty() {
                        Err(TermError::Empty)
                    } else {
                        Ok(Arc::from(term.to_ascii_lowercase()))
                    }
                })
                .collect()
        };
        let keywords = lower(keywords)?;
        let exclusions = lower(exclusions)?;
        let automaton = if keywords.is_empty() && exclusions.is_empty() {
            None
        } else {
            let terms = keywords.iter().chain(&exclusions).map(|t| t.as_bytes());
            let automaton = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(terms)
                .map_err(|e| TermError::Build(e.to_string()))?;
            Some(automaton)
        };
        Ok(Classifier {
            automaton,
            keywords,
            exclusions,
        })
    }

    /// Marks every term that occurs as a whole word in `context`.
    pub(crate) fn find_terms(&self, context: &[u8], found: &mut TermSet) {
        let Some(automaton) = &self.automaton else {
            return;
        };
        for hit in automaton.find_overlapping_iter(context) {
            let before_ok = hit.start() == 0 || !is_word_byte(context[hit.start() - 1]);
            let after_ok = hit.end() == context.len() || !is_word_byte(context[hit.end()]);
            if before_ok && after_ok {
                found.insert(hit.pattern().as_usize());
            }
        }
    }

    /// The confidence and the terms found, in the rule's order.
    pub(crate) fn classify(&self, found: &TermSet, placeholder: bool) -> Classification {
        let keywords: Vec<Arc<str>> = (0..self.keywords.len())
            .filter(|&i| found.contains(i))
            .map(|i| Arc::clone(&self.keywords[i]))
            .collect();
        let exclusions: Vec<Arc<str>> = (0..self.exclusions.len())
            .filter(|&i| found.contains(self.keywords.len() + i))
            .map(|i| Arc::clone(&self.exclusions[i]))
            .collect();
        Classification {
            confidence: Confidence::assess(
                !keywords.is_empty(),
                !exclusions.is_empty(),
                placeholder,
            ),
            keywords: dedup(keywords),
            exclusions: dedup(exclusions),
        }
    }
}

/// Terms that differ only in case in the configuration are reported once.
fn dedup(mut terms: Vec<Arc<str>>) -> Vec<Arc<str>> {
    let mut seen = std::collections::HashSet::new();
    terms.retain(|term| seen.insert(Arc::clone(term)));
    terms
}

/// ASCII word bytes, as `\b` sees them (SPEC §1).
pub(crate) fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Whether a matched value (without the rule's literal prefix) is a
/// well-known placeholder: one character repeated, or `0123456789abcdef`
/// repeated (in either case).
pub(crate) fn is_placeholder(value: &[u8]) -> bool {
    const SEQUENCE: &[u8; 16] = b"0123456789abcdef";
    let Some(&first) = value.first() else {
        return false;
    };
    value.iter().all(|&b| b == first)
        || value
            .iter()
            .zip(SEQUENCE.iter().cycle())
            .all(|(b, s)| b.to_ascii_lowercase() == *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn classify(classifier: &Classifier, context: &str) -> Classification {
        let mut found = TermSet::default();
        classifier.find_terms(context.as_bytes(), &mut found);
        classifier.classify(&found, false)
    }

    #[test]
    fn whole_words_case_insensitively() {
        let c = Classifier::new(
            &terms(&["PAT", "access token", "bearer"]),
            &terms(&["example"]),
        )
        .unwrap();
        let r = classify(&c, "the path to PATterns");
        assert!(r.keywords.is_empty());
        assert_eq!(r.confidence, Confidence::Medium);
        let r = classify(&c, "pat: x; Access Token=; BEARER");
        let names: Vec<&str> = r.keywords.iter().map(|k| &**k).collect();
        assert_eq!(names, ["pat", "access token", "bearer"]);
        assert_eq!(r.confidence, Confidence::High);
        let r = classify(&c, "bearer, for example");
        assert_eq!(r.confidence, Confidence::Low);
        assert_eq!(&*r.exclusions[0], "example");
        // Word bytes on either side break the word; the context's edges do not.
        assert!(classify(&c, "xbearer").keywords.is_empty());
        assert!(classify(&c, "bearer_").keywords.is_empty());
        assert_eq!(classify(&c, "bearer").keywords.len(), 1);
    }

    #[test]
    fn overlapping_terms_are_all_found() {
        let c = Classifier::new(&terms(&["personal access token", "access token"]), &[]).unwrap();
        assert_eq!(classify(&c, "a personal access token").keywords.len(), 2);
    }

    #[test]
    fn empty_term_is_refused() {
        assert_eq!(
            Classifier::new(&terms(&[""]), &[]).err(),
            Some(TermError::Empty)
        );
    }

    #[test]
    fn placeholders() {
        assert!(is_placeholder(&[b'0'; 32]));
        assert!(is_placeholder(&[b'f'; 32]));
        assert!(is_placeholder(b"0123456789abcdef0123456789abcdef"));
        assert!(is_placeholder(b"0123456789ABCDEF0123456789ABCDEF"));
        assert!(!is_placeholder(b"aabbccdd11223344556677889900abcd"));
        assert!(!is_placeholder(b"0123456789abcdef0123456789abcdee"));
        assert!(!is_placeholder(b""));
    }
}
