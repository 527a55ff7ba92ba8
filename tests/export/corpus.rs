//! Generated log lines for the verdict comparisons: for each rule, its
//! tokens (generated at run time: no credential-shaped text is committed) in
//! every kind of context that decides a confidence — a keyword before or
//! after, near or just out of reach, an exclusion term, a placeholder value,
//! a keyword inside a longer word, non-ASCII letters next to the token or
//! the keyword — each line alone between spacers longer than any window.

use crate::common::TokenGen;

/// What a line is made to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No keyword, no exclusion term: medium.
    Plain,
    /// `KEYWORD: token`: high.
    KeywordBefore,
    /// `token (KEYWORD)`: high.
    KeywordAfter,
    /// The keyword starts 295 characters before the token: high.
    KeywordFarBefore,
    /// The same, the characters between non-ASCII (two bytes each):
    /// still high, the window counts characters.
    KeywordFarBeforeUnicode,
    /// The keyword ends 312 characters before the token: medium.
    KeywordTooFar,
    /// `EXCLUSION token`: low.
    Exclusion,
    /// `EXCLUSION KEYWORD token`: low, the exclusion wins.
    ExclusionAndKeyword,
    /// `KEYWORD placeholder`: low.
    Placeholder,
    /// The keyword inside a longer word: not a keyword, medium.
    SubstringKeyword,
    /// A non-ASCII letter right before the token: a boundary for
    /// logredact, medium.
    UnicodeBefore,
    /// A non-ASCII letter right before the keyword: still a whole word for
    /// logredact, high.
    UnicodeKeyword,
    /// Near misses of the default rule: no detection.
    NearMiss,
}

impl Kind {
    /// Every kind with a token of any rule.
    pub const FOR_EVERY_RULE: [Kind; 12] = [
        Kind::Plain,
        Kind::KeywordBefore,
        Kind::KeywordAfter,
        Kind::KeywordFarBefore,
        Kind::KeywordFarBeforeUnicode,
        Kind::KeywordTooFar,
        Kind::Exclusion,
        Kind::ExclusionAndKeyword,
        Kind::Placeholder,
        Kind::SubstringKeyword,
        Kind::UnicodeBefore,
        Kind::UnicodeKeyword,
    ];
}

/// One line of the corpus.
#[derive(Debug, Clone)]
pub struct Line {
    /// Byte range of the line in the corpus.
    pub start: usize,
    pub end: usize,
    pub rule: &'static str,
    pub kind: Kind,
    /// The token (or placeholder) in the line; empty for near misses.
    pub token: String,
}

/// A rule's tokens and the terms the lines use.
pub struct RuleCase {
    pub id: &'static str,
    /// A keyword of the rule: a whole word of at least 3 characters.
    pub keyword: &'static str,
    /// An exclusion term of the rule.
    pub exclusion: &'static str,
    pub token: fn(&mut TokenGen, usize) -> String,
    /// A placeholder value the rule matches, if the case has one.
    pub placeholder: fn(usize) -> Option<String>,
}

fn draw(tokens: &mut TokenGen, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[(tokens.next_u64() % alphabet.len() as u64) as usize]))
        .collect()
}

const HEX: &[u8] = b"0123456789abcdef";
const DIGITS: &[u8] = b"0123456789";
const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const WORD: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";

/// The default rule.
pub fn databricks() -> RuleCase {
    RuleCase {
        id: "databricks-pat",
        keyword: "bearer",
        exclusion: "example",
        token: |tokens, _| format!("dapi{}", draw(tokens, HEX, 32)),
        placeholder: |n| {
            Some(match n % 2 {
                0 => "dapi0123456789abcdef0123456789abcdef".to_string(),
                _ => "dapi00000000000000000000000000000000".to_string(),
            })
        },
    }
}

/// The ten rules a configuration including the credential pack has.
pub fn credential_pack() -> Vec<RuleCase> {
    vec![
        databricks(),
        RuleCase {
            id: "aws-access-key-id",
            keyword: "amazon",
            exclusion: "example",
            token: |tokens, n| {
                let prefix = if n % 2 == 0 { "AKIA" } else { "ASIA" };
                format!("{prefix}{}", draw(tokens, UPPER_ALNUM, 16))
            },
            placeholder: |_| Some("AKIA0123456789ABCDEF".to_string()),
        },
        RuleCase {
            id: "github-token",
            keyword: "github",
            exclusion: "template",
            token: |tokens, n| {
                format!(
                    "gh{}_{}",
                    ["p", "o", "u", "s", "r"][n % 5],
                    draw(tokens, ALNUM, 36)
                )
            },
            placeholder: |_| Some(format!("ghp_{}", "0".repeat(36))),
        },
        RuleCase {
            id: "github-fine-grained-pat",
            keyword: "github",
            exclusion: "sample",
            token: |tokens, _| {
                format!(
                    "github_pat_{}_{}",
                    draw(tokens, ALNUM, 22),
                    draw(tokens, ALNUM, 59)
                )
            },
            placeholder: |_| None,
        },
        RuleCase {
            id: "gitlab-pat",
            keyword: "gitlab",
            exclusion: "example",
            token: |tokens, n| match n % 2 {
                0 => format!("glpat-{}", draw(tokens, ALNUM, 20)),
                _ => format!(
                    "glpat-{}.01.{}",
                    draw(tokens, WORD, 27),
                    draw(tokens, LOWER_ALNUM, 9)
                ),
            },
            placeholder: |_| Some(format!("glpat-{}", "0".repeat(20))),
        },
        RuleCase {
            id: "npm-access-token",
            keyword: "npmrc",
            exclusion: "example",
            token: |tokens, _| format!("npm_{}", draw(tokens, ALNUM, 36)),
            placeholder: |_| Some(format!("npm_{}", "1".repeat(36))),
        },
        RuleCase {
            id: "slack-token",
            keyword: "slack",
            exclusion: "placeholder",
            token: |tokens, _| {
                format!(
                    "xoxb-{}-{}-{}",
                    draw(tokens, DIGITS, 12),
                    draw(tokens, DIGITS, 13),
                    draw(tokens, ALNUM, 24)
                )
            },
            placeholder: |_| None,
        },
        RuleCase {
            id: "stripe-secret-key",
            keyword: "stripe",
            exclusion: "example",
            token: |tokens, n| match n % 2 {
                0 => format!("sk_live_{}", draw(tokens, ALNUM, 24)),
                _ => format!("rk_test_{}", draw(tokens, ALNUM, 99)),
            },
            placeholder: |_| Some(format!("sk_live_{}", "0".repeat(24))),
        },
        RuleCase {
            id: "google-api-key",
            keyword: "google",
            exclusion: "example",
            token: |tokens, _| format!("AIza{}", draw(tokens, WORD, 35)),
            placeholder: |_| None,
        },
        RuleCase {
            id: "jwt",
            keyword: "bearer",
            exclusion: "example",
            token: |tokens, _| {
                format!(
                    "eyJ{}.eyJ{}.{}",
                    draw(tokens, WORD, 33),
                    draw(tokens, WORD, 60),
                    draw(tokens, WORD, 43)
                )
            },
            placeholder: |_| None,
        },
    ]
}

/// Text between lines: longer than any window, and holding no term.
fn spacer() -> String {
    format!("\n{}\n", "filler ".repeat(50))
}

/// The corpus: for each rule, `rounds` lines of every kind (and near
/// misses of the default rule), in a fixed order; `seed` fixes the tokens.
pub fn corpus(rules: &[RuleCase], rounds: usize, seed: u64) -> (String, Vec<Line>) {
    let mut tokens = TokenGen::new(seed);
    let mut text = String::new();
    let mut lines = Vec::new();
    for round in 0..rounds {
        for rule in rules {
            let mut kinds = Kind::FOR_EVERY_RULE.to_vec();
            if rule.id == "databricks-pat" {
                kinds.push(Kind::NearMiss);
            }
            for kind in kinds {
                let token = (rule.token)(&mut tokens, round);
                let (keyword, exclusion) = (rule.keyword, rule.exclusion);
                let mut shown = token.clone();
                let line = match kind {
                    Kind::Plain => format!("value {token} seen"),
                    Kind::KeywordBefore => format!("{keyword}: {token}"),
                    Kind::KeywordAfter => format!("{token} ({keyword})"),
                    Kind::KeywordFarBefore | Kind::KeywordFarBeforeUnicode => {
                        // The keyword starts 295 characters before the token.
                        let filler = if kind == Kind::KeywordFarBefore {
                            "~"
                        } else {
                            "é"
                        };
                        let n = 295 - keyword.len() - 2;
                        format!("{keyword} {} {token}", filler.repeat(n))
                    }
                    Kind::KeywordTooFar => format!("{keyword} {} {token}", "~".repeat(310)),
                    Kind::Exclusion => format!("{exclusion} {token}"),
                    Kind::ExclusionAndKeyword => format!("{exclusion} {keyword} {token}"),
                    Kind::Placeholder => match (rule.placeholder)(round) {
                        Some(value) => {
                            let line = format!("{keyword} {value}");
                            shown = value;
                            line
                        }
                        None => continue,
                    },
                    Kind::SubstringKeyword => format!("x{keyword}x {token}"),
                    Kind::UnicodeBefore => format!("é{token}"),
                    Kind::UnicodeKeyword => format!("é{keyword} {token}"),
                    Kind::NearMiss => {
                        shown.clear();
                        format!(
                            "dapi0000 databricks-token=some-other-format DAPI{} dapi{} xdapi{} dapi{}g",
                            draw(&mut tokens, HEX, 32),
                            draw(&mut tokens, HEX, 33),
                            draw(&mut tokens, HEX, 32),
                            draw(&mut tokens, HEX, 31)
                        )
                    }
                };
                text.push_str(&spacer());
                let start = text.len();
                text.push_str(&line);
                lines.push(Line {
                    start,
                    end: text.len(),
                    rule: rule.id,
                    kind,
                    token: shown,
                });
            }
        }
    }
    text.push_str(&spacer());
    (text, lines)
}
