//! The part every export shares: a rule's pattern, parsed exactly as the
//! scanner parses it, written out in another regular-expression dialect — or
//! refused, with the reason, where that dialect cannot say the same thing —
//! and the rule's terms and placeholder values in the forms the products
//! take.
//!
//! Patterns are written from the parsed form ([`Node`]), never by editing
//! the rule's text: every class is spelled out as ASCII ranges (`\d` is
//! Unicode in some dialects), case-insensitive parts are already classes
//! (`[Aa]`, since some dialects take no flags), and every group is
//! non-capturing. What the scanner matches byte by byte, the products match
//! character by character: the two agree on ASCII, and a pattern that could
//! match only some of the bytes above 0x7F is refused.

use std::fmt::Write as _;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A set of bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    fn single(byte: u8) -> ByteSet {
        let mut set = ByteSet::default();
        set.insert(byte);
        set
    }

    fn insert(&mut self, byte: u8) {
        self.0[usize::from(byte / 64)] |= 1 << (byte % 64);
    }

    pub(crate) fn contains(&self, byte: u8) -> bool {
        self.0[usize::from(byte / 64)] & (1 << (byte % 64)) != 0
    }

    fn union(&self, other: &ByteSet) -> ByteSet {
        let mut words = self.0;
        for (word, other) in words.iter_mut().zip(other.0) {
            *word |= other;
        }
        ByteSet(words)
    }

    fn is_disjoint(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(other.0).all(|(a, b)| a & b == 0)
    }

    fn len(&self) -> u32 {
        self.0.iter().map(|word| word.count_ones()).sum()
    }

    /// The bytes in the set, in order.
    pub(crate) fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|&byte| self.contains(byte))
    }

    /// Whether the set holds every byte above 0x7F (a negated class does).
    fn has_all_high(&self) -> bool {
        (0x80..=0xffu8).all(|byte| self.contains(byte))
    }

    fn has_any_high(&self) -> bool {
        (0x80..=0xffu8).any(|byte| self.contains(byte))
    }

    /// Whether the set is `.`: every byte, or every byte but the newline.
    fn is_any(&self) -> bool {
        self.len() >= 255 && (0..=255u8).all(|byte| byte == b'\n' || self.contains(byte))
    }
}

/// The dialect a product's patterns are written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dialect {
    /// Boost.Regex, as Microsoft Purview runs it on Unicode text: `\b` and
    /// `\w` count non-ASCII letters as word characters.
    Boost,
    /// RE2, as Google Cloud DLP runs it: `\b` is ASCII.
    Re2,
    /// The subset of PCRE Amazon Macie takes: no capturing groups, no
    /// lookaround, no flags; `\b` is ASCII.
    Pcre,
}

/// Why a pattern cannot be written in a dialect, in words for the user.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Inexpressible(pub(crate) String);

/// A zero-width assertion the exports can write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Anchor {
    /// `\b`, ASCII word bytes.
    WordBoundary,
    /// `\B`, ASCII word bytes.
    NotWordBoundary,
    /// `(?m)^`: the start of a line.
    LineStart,
    /// `(?m)$`: the end of a line.
    LineEnd,
}

/// A rule's pattern, as the exports see it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Node {
    Empty,
    /// ASCII bytes.
    Literal(Vec<u8>),
    Class(ByteSet),
    Look(Anchor),
    Repeat {
        sub: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
}

/// The pattern `hir` (parsed as the scanner parses it) as a [`Node`], or why
/// no product could match the same.
pub(crate) fn lower(hir: &Hir) -> Result<Node, Inexpressible> {
    Ok(match hir.kind() {
        HirKind::Empty => Node::Empty,
        HirKind::Literal(literal) => {
            if literal.0.iter().any(|byte| !byte.is_ascii()) {
                return Err(Inexpressible(
                    "it has a literal byte above 0x7F: the products match characters of text, not bytes"
                        .into(),
                ));
            }
            Node::Literal(literal.0.to_vec())
        }
        HirKind::Class(Class::Bytes(class)) => {
            let mut set = ByteSet::default();
            for range in class.ranges() {
                for byte in range.start()..=range.end() {
                    set.insert(byte);
                }
            }
            if set.has_any_high() && !set.has_all_high() {
                return Err(Inexpressible(
                    "a character class holds some bytes above 0x7F but not all: the products match characters of text, not bytes"
                        .into(),
                ));
            }
            Node::Class(set)
        }
        HirKind::Class(Class::Unicode(class)) => {
            let mut set = ByteSet::default();
            for range in class.ranges() {
                if !range.end().is_ascii() {
                    return Err(Inexpressible(
                        "it has a Unicode character class with non-ASCII characters, which is not translated"
                            .into(),
                    ));
                }
                for byte in range.start() as u8..=range.end() as u8 {
                    set.insert(byte);
                }
            }
            Node::Class(set)
        }
        HirKind::Look(look) => Node::Look(match look {
            Look::WordAscii => Anchor::WordBoundary,
            Look::WordAsciiNegate => Anchor::NotWordBoundary,
            Look::StartLF => Anchor::LineStart,
            Look::EndLF => Anchor::LineEnd,
            other => {
                return Err(Inexpressible(format!(
                    "the assertion {other:?} has no equivalent in the products' dialects"
                )));
            }
        }),
        HirKind::Repetition(repetition) => Node::Repeat {
            sub: Box::new(lower(&repetition.sub)?),
            min: repetition.min,
            max: repetition.max,
            greedy: repetition.greedy,
        },
        HirKind::Capture(capture) => lower(&capture.sub)?,
        HirKind::Concat(parts) => Node::Concat(parts.iter().map(lower).collect::<Result<_, _>>()?),
        HirKind::Alternation(parts) => {
            Node::Alt(parts.iter().map(lower).collect::<Result<_, _>>()?)
        }
    })
}

/// Whether some class of the pattern matches any character above 0x7F (a
/// negated class, `.`): the product then matches one such character where
/// the scanner matches one byte.
pub(crate) fn matches_non_ascii(node: &Node) -> bool {
    match node {
        Node::Class(set) => set.has_all_high(),
        Node::Repeat { sub, .. } => matches_non_ascii(sub),
        Node::Concat(parts) | Node::Alt(parts) => parts.iter().any(matches_non_ascii),
        Node::Empty | Node::Literal(_) | Node::Look(_) => false,
    }
}

/// Whether the pattern uses `\b` or `\B`.
pub(crate) fn uses_word_boundaries(node: &Node) -> bool {
    match node {
        Node::Look(anchor) => matches!(anchor, Anchor::WordBoundary | Anchor::NotWordBoundary),
        Node::Repeat { sub, .. } => uses_word_boundaries(sub),
        Node::Concat(parts) | Node::Alt(parts) => parts.iter().any(uses_word_boundaries),
        Node::Empty | Node::Literal(_) | Node::Class(_) => false,
    }
}

/// The pattern written in `dialect`.
pub(crate) fn print(node: &Node, dialect: Dialect) -> Result<String, Inexpressible> {
    let mut out = String::new();
    write_alternation(node, dialect, &mut out)?;
    Ok(out)
}

/// One sequence of a flattened pattern (see [`flatten`]) written in
/// `dialect`.
pub(crate) fn print_sequence(sequence: &[Node], dialect: Dialect) -> Result<String, Inexpressible> {
    let mut out = String::new();
    for node in sequence {
        write_item(node, dialect, &mut out)?;
    }
    Ok(out)
}

fn write_alternation(node: &Node, dialect: Dialect, out: &mut String) -> Result<(), Inexpressible> {
    match node {
        Node::Alt(parts) => {
            for (index, part) in parts.iter().enumerate() {
                if index > 0 {
                    out.push('|');
                }
                write_item(part, dialect, out)?;
            }
            Ok(())
        }
        other => write_item(other, dialect, out),
    }
}

fn write_item(node: &Node, dialect: Dialect, out: &mut String) -> Result<(), Inexpressible> {
    match node {
        Node::Empty => {}
        Node::Literal(bytes) => bytes.iter().for_each(|&byte| push_literal(byte, out)),
        Node::Class(set) => push_class(set, out),
        Node::Look(anchor) => out.push_str(anchor_text(*anchor, dialect)?),
        Node::Repeat {
            sub,
            min,
            max,
            greedy,
        } => {
            if is_atom(sub) {
                write_item(sub, dialect, out)?;
            } else {
                out.push_str("(?:");
                write_alternation(sub, dialect, out)?;
                out.push(')');
            }
            match (*min, *max) {
                (0, Some(1)) => out.push('?'),
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (min, None) => write!(out, "{{{min},}}").unwrap_or_default(),
                (min, Some(max)) if min == max => write!(out, "{{{min}}}").unwrap_or_default(),
                (min, Some(max)) => write!(out, "{{{min},{max}}}").unwrap_or_default(),
            }
            if !greedy {
                out.push('?');
            }
        }
        Node::Concat(parts) => {
            for part in parts {
                write_item(part, dialect, out)?;
            }
        }
        Node::Alt(_) => {
            out.push_str("(?:");
            write_alternation(node, dialect, out)?;
            out.push(')');
        }
    }
    Ok(())
}

fn anchor_text(anchor: Anchor, dialect: Dialect) -> Result<&'static str, Inexpressible> {
    match (anchor, dialect) {
        (Anchor::WordBoundary, _) => Ok(r"\b"),
        (Anchor::NotWordBoundary, _) => Ok(r"\B"),
        (Anchor::LineStart, Dialect::Re2) => Ok("(?m:^)"),
        (Anchor::LineEnd, Dialect::Re2) => Ok("(?m:$)"),
        (Anchor::LineStart | Anchor::LineEnd, Dialect::Pcre) => Err(Inexpressible(
            "it anchors to the start or end of a line ((?m)^, (?m)$), which needs the multi-line flag, and Macie takes no flags"
                .into(),
        )),
        (Anchor::LineStart | Anchor::LineEnd, Dialect::Boost) => Err(Inexpressible(
            "it anchors to the start or end of a line ((?m)^, (?m)$), and Purview does not document what ^ and $ match"
                .into(),
        )),
    }
}

/// A node a quantifier applies to without a group.
fn is_atom(node: &Node) -> bool {
    match node {
        Node::Literal(bytes) => bytes.len() == 1,
        Node::Class(_) => true,
        _ => false,
    }
}

fn push_literal(byte: u8, out: &mut String) {
    match byte {
        b'\\' | b'.' | b'^' | b'$' | b'|' | b'?' | b'*' | b'+' | b'(' | b')' | b'[' | b']'
        | b'{' | b'}' => {
            out.push('\\');
            out.push(char::from(byte));
        }
        0x20..=0x7e => out.push(char::from(byte)),
        _ => write!(out, "\\x{byte:02X}").unwrap_or_default(),
    }
}

fn push_class_byte(byte: u8, out: &mut String) {
    match byte {
        b'\\' | b']' | b'[' | b'^' | b'-' | b'&' | b'~' | b'|' => {
            out.push('\\');
            out.push(char::from(byte));
        }
        0x20..=0x7e => out.push(char::from(byte)),
        _ => write!(out, "\\x{byte:02X}").unwrap_or_default(),
    }
}

/// The ASCII bytes of `set` as ranges, in order.
fn ascii_ranges(set: &ByteSet) -> Vec<(u8, u8)> {
    let mut ranges: Vec<(u8, u8)> = Vec::new();
    for byte in set.bytes().filter(u8::is_ascii) {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == byte => *end = byte,
            _ => ranges.push((byte, byte)),
        }
    }
    ranges
}

fn push_ranges(ranges: &[(u8, u8)], out: &mut String) {
    for &(start, end) in ranges {
        push_class_byte(start, out);
        if end > start + 1 {
            out.push('-');
        }
        if end > start {
            push_class_byte(end, out);
        }
    }
}

fn push_class(set: &ByteSet, out: &mut String) {
    if set.has_all_high() {
        // Every byte above 0x7F: in text, every non-ASCII character. Written
        // as the negation of the ASCII bytes the class leaves out.
        let mut complement = ByteSet::default();
        for byte in (0..0x80u8).filter(|&byte| !set.contains(byte)) {
            complement.insert(byte);
        }
        if complement == ByteSet::default() {
            out.push_str(r"[\s\S]");
        } else {
            out.push_str("[^");
            push_ranges(&ascii_ranges(&complement), out);
            out.push(']');
        }
        return;
    }
    if set.len() == 1 {
        if let Some(byte) = set.bytes().next() {
            push_literal(byte, out);
        }
        return;
    }
    out.push('[');
    push_ranges(&ascii_ranges(set), out);
    out.push(']');
}

/// The most sequences [`flatten`] writes; beyond, the pattern is kept as it is.
const MAX_SEQUENCES: usize = 32;

/// The pattern as one alternation of sequences without groups (each a list
/// of literals, classes, anchors and quantified characters), for Purview,
/// which refuses some quantifiers inside groups: `P(?:A|B)` becomes
/// `PA|PB`, `P(?:X)?` becomes `PX|P`.
///
/// A backtracking engine tries `P(?:A|B)` as: the first way `P` matches,
/// then `A`, then `B`; then the next way `P` matches. `PA|PB` tries every
/// way of `P` with `A` first. The two agree when only one way of `P` can be
/// followed by `A` or `B`, which is checked ([`deterministic`]); `None` when
/// it cannot be shown, or the result would be too long.
pub(crate) fn flatten(node: &Node) -> Option<Vec<Vec<Node>>> {
    sequences(node).filter(|all| all.len() <= MAX_SEQUENCES)
}

fn sequences(node: &Node) -> Option<Vec<Vec<Node>>> {
    match node {
        Node::Empty => Some(vec![Vec::new()]),
        Node::Literal(_) | Node::Class(_) | Node::Look(_) => Some(vec![vec![node.clone()]]),
        Node::Repeat { sub, .. } if is_atom(sub) => Some(vec![vec![node.clone()]]),
        Node::Repeat {
            sub,
            min: 0,
            max: Some(1),
            greedy: true,
        } => {
            // A greedy optional group: first with it, then without.
            let mut options = sequences(sub)?;
            if options.iter().any(|option| first_of(option).1) {
                return None;
            }
            options.push(Vec::new());
            Some(options)
        }
        Node::Repeat {
            sub,
            min,
            max: Some(max),
            ..
        } if min == max && *min <= 4 => {
            sequences(&Node::Concat(vec![sub.as_ref().clone(); *min as usize]))
        }
        Node::Repeat { .. } => Some(vec![vec![node.clone()]]),
        Node::Concat(parts) => {
            let mut done: Vec<Vec<Node>> = vec![Vec::new()];
            for part in parts {
                let options = sequences(part)?;
                if options.len() > 1 && !done.iter().all(|before| deterministic(before, &options)) {
                    return None;
                }
                let mut next = Vec::with_capacity(done.len() * options.len());
                for before in &done {
                    for option in &options {
                        let mut sequence = before.clone();
                        sequence.extend(option.iter().cloned());
                        next.push(sequence);
                    }
                }
                if next.len() > MAX_SEQUENCES {
                    return None;
                }
                done = next;
            }
            Some(done)
        }
        Node::Alt(parts) => {
            let mut all = Vec::new();
            for part in parts {
                all.extend(sequences(part)?);
                if all.len() > MAX_SEQUENCES {
                    return None;
                }
            }
            Some(all)
        }
    }
}

/// Whether at most one of the ways `before` can match (from one start) can
/// be followed by one of `options`: then trying `before` then each option
/// and trying each option after every way of `before` find the same match.
///
/// Shown when every part of `before` of variable length is a greedy
/// repetition of one character class that the text right after it can never
/// continue: whatever must follow it (the rest of `before`, else the
/// options) starts with a byte outside the class, so the repetition stops
/// only where its run ends. Only the last option may match the empty text
/// (an optional group): trying it last is what the original does too.
fn deterministic(before: &[Node], options: &[Vec<Node>]) -> bool {
    let last = options.len().saturating_sub(1);
    let mut follow = ByteSet::default();
    for (index, option) in options.iter().enumerate() {
        let (first, nullable) = first_of(option);
        if nullable && index != last {
            return false;
        }
        follow = follow.union(&first);
    }
    for (index, node) in before.iter().enumerate() {
        if fixed_len(node).is_some() {
            continue;
        }
        let Node::Repeat {
            sub, greedy: true, ..
        } = node
        else {
            return false;
        };
        let Some(class) = atom_set(sub) else {
            return false;
        };
        let (rest, rest_nullable) = first_of(&before[index + 1..]);
        let next = if rest_nullable {
            rest.union(&follow)
        } else {
            rest
        };
        if !next.is_disjoint(&class) {
            return false;
        }
    }
    true
}

fn atom_set(node: &Node) -> Option<ByteSet> {
    match node {
        Node::Literal(bytes) if bytes.len() == 1 => Some(ByteSet::single(bytes[0])),
        Node::Class(set) => Some(*set),
        _ => None,
    }
}

/// Length in bytes of every match of `node`, if that is one number.
fn fixed_len(node: &Node) -> Option<usize> {
    match node {
        Node::Empty | Node::Look(_) => Some(0),
        Node::Literal(bytes) => Some(bytes.len()),
        Node::Class(_) => Some(1),
        Node::Repeat { sub, min, max, .. } => {
            (Some(*min) == *max).then_some(())?;
            Some(fixed_len(sub)? * *min as usize)
        }
        Node::Concat(parts) => parts.iter().map(fixed_len).sum(),
        Node::Alt(parts) => {
            let lens: Option<Vec<usize>> = parts.iter().map(fixed_len).collect();
            let lens = lens?;
            let first = *lens.first()?;
            lens.iter().all(|&len| len == first).then_some(first)
        }
    }
}

/// The bytes a match of `sequence` can start with, and whether it can be
/// empty.
fn first_of(sequence: &[Node]) -> (ByteSet, bool) {
    let mut first = ByteSet::default();
    for node in sequence {
        let (set, nullable) = first_of_node(node);
        first = first.union(&set);
        if !nullable {
            return (first, false);
        }
    }
    (first, true)
}

fn first_of_node(node: &Node) -> (ByteSet, bool) {
    match node {
        Node::Empty | Node::Look(_) => (ByteSet::default(), true),
        Node::Literal(bytes) => match bytes.first() {
            Some(&byte) => (ByteSet::single(byte), false),
            None => (ByteSet::default(), true),
        },
        Node::Class(set) => (*set, false),
        Node::Repeat { sub, min, .. } => {
            let (set, nullable) = first_of_node(sub);
            (set, nullable || *min == 0)
        }
        Node::Concat(parts) => first_of(parts),
        Node::Alt(parts) => parts
            .iter()
            .fold((ByteSet::default(), false), |(set, any), part| {
                let (first, nullable) = first_of_node(part);
                (set.union(&first), any || nullable)
            }),
    }
}

/// Whether the node is a quantified character of the kind Purview refuses
/// inside a group: `{0,m}` or `{1,m}` (with `?`, `*` and `+`).
pub(crate) fn is_loose_character_repeat(node: &Node) -> bool {
    matches!(node, Node::Repeat { sub, min, .. } if *min <= 1 && is_atom(sub))
}

/// Whether the node is `.{0,m}` or `.{1,m}` (any character, loosely
/// repeated), which Purview refuses at the start or end of a pattern.
pub(crate) fn is_loose_any_repeat(node: &Node) -> bool {
    matches!(node, Node::Repeat { sub, min, .. }
        if *min <= 1 && atom_set(sub).is_some_and(|set| set.is_any()))
}

/// Every node inside a group of `node` (an alternation within a sequence,
/// a quantified group), for Purview's rules on groups.
pub(crate) fn nodes_in_groups(node: &Node) -> Vec<&Node> {
    fn inside<'a>(node: &'a Node, all: &mut Vec<&'a Node>) {
        all.push(node);
        match node {
            Node::Repeat { sub, .. } => inside(sub, all),
            Node::Concat(parts) | Node::Alt(parts) => parts.iter().for_each(|p| inside(p, all)),
            Node::Empty | Node::Literal(_) | Node::Class(_) | Node::Look(_) => {}
        }
    }
    fn groups<'a>(node: &'a Node, top: bool, all: &mut Vec<&'a Node>) {
        match node {
            Node::Repeat { sub, .. } if !is_atom(sub) => inside(sub, all),
            Node::Alt(parts) if top => parts.iter().for_each(|p| groups(p, false, all)),
            Node::Alt(parts) => parts.iter().for_each(|p| inside(p, all)),
            Node::Concat(parts) => parts.iter().for_each(|p| groups(p, false, all)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    groups(node, true, &mut all);
    all
}

/// Whether a group of `node` is quantified without an upper bound.
pub(crate) fn has_unbounded_group(node: &Node) -> bool {
    match node {
        Node::Repeat { sub, max, .. } => {
            (max.is_none() && !is_atom(sub)) || has_unbounded_group(sub)
        }
        Node::Concat(parts) | Node::Alt(parts) => parts.iter().any(has_unbounded_group),
        Node::Empty | Node::Literal(_) | Node::Class(_) | Node::Look(_) => false,
    }
}

/// Whether `byte` is a word byte, as the scanner's `\b` and terms see it.
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// An RE2 pattern that finds any of `terms` as logredact finds a keyword or
/// exclusion term: ASCII letters in either case (every other character as
/// it is), and only as a whole word, with no ASCII word character right
/// before or after it.
pub(crate) fn terms_re2(terms: &[String]) -> String {
    let mut out = String::from("(?:");
    for (index, term) in terms.iter().enumerate() {
        if index > 0 {
            out.push('|');
        }
        let bytes = term.as_bytes();
        match bytes.first() {
            Some(&byte) if is_word_byte(byte) => out.push_str(r"\b"),
            _ => out.push_str("(?:^|[^0-9A-Za-z_])"),
        }
        for c in term.chars() {
            if c.is_ascii_alphabetic() {
                out.push('[');
                out.push(c.to_ascii_uppercase());
                out.push(c.to_ascii_lowercase());
                out.push(']');
            } else if c.is_ascii() {
                push_literal(c as u8, &mut out);
            } else {
                out.push(c);
            }
        }
        match bytes.last() {
            Some(&byte) if is_word_byte(byte) => out.push_str(r"\b"),
            _ => out.push_str("(?:[^0-9A-Za-z_]|$)"),
        }
    }
    out.push(')');
    out
}

/// Whether `term` stands as a whole word (ASCII case-insensitive) inside
/// one of the literal prefixes some match of the pattern starts with: then a
/// product whose keyword window holds the match itself finds the term in
/// every such match, where logredact looks only around the match.
pub(crate) fn term_in_prefixes(term: &str, node: &Node, prefixes: &[Vec<u8>]) -> bool {
    let first_is_boundary = match node {
        Node::Concat(parts) => matches!(parts.first(), Some(Node::Look(Anchor::WordBoundary))),
        _ => false,
    };
    let term = term.as_bytes();
    prefixes.iter().any(|prefix| {
        (0..prefix.len()).any(|at| {
            let end = at + term.len();
            end < prefix.len()
                && prefix[at..end].eq_ignore_ascii_case(term)
                && !is_word_byte(prefix[end])
                && match at {
                    0 => first_is_boundary && is_word_byte(prefix[0]),
                    _ => !is_word_byte(prefix[at - 1]),
                }
        })
    })
}

/// The placeholder test's sequence: a value is a placeholder if it is one
/// character repeated, or these characters over and over (in either case).
const SEQUENCE: &[u8; 16] = b"0123456789abcdef";

/// The bytes the pattern can match anywhere.
fn alphabet(node: &Node) -> ByteSet {
    match node {
        Node::Empty | Node::Look(_) => ByteSet::default(),
        Node::Literal(bytes) => bytes.iter().fold(ByteSet::default(), |set, &byte| {
            set.union(&ByteSet::single(byte))
        }),
        Node::Class(set) => *set,
        Node::Repeat { sub, .. } => alphabet(sub),
        Node::Concat(parts) | Node::Alt(parts) => parts
            .iter()
            .fold(ByteSet::default(), |set, part| set.union(&alphabet(part))),
    }
}

/// An RE2 pattern that fully matches exactly the matches the scanner calls
/// placeholders: the match without the longest literal prefix it starts
/// with is one character repeated, or `0123456789abcdef` repeated (in
/// either case), cut anywhere.
pub(crate) fn placeholder_full_match_re2(
    node: &Node,
    prefixes: &[Vec<u8>],
) -> Result<String, Inexpressible> {
    for (index, prefix) in prefixes.iter().enumerate() {
        if prefix.iter().any(|byte| !byte.is_ascii()) {
            return Err(Inexpressible(
                "its literal prefix has bytes above 0x7F".into(),
            ));
        }
        let overlapping = prefixes
            .iter()
            .enumerate()
            .any(|(other, longer)| other != index && longer.starts_with(prefix));
        if overlapping {
            return Err(Inexpressible(
                "one of its literal prefixes begins another, and which of them the value follows cannot be told in RE2"
                    .into(),
            ));
        }
    }
    let mut out = String::new();
    if !prefixes.is_empty() {
        out.push_str("(?:");
        for (index, prefix) in prefixes.iter().enumerate() {
            if index > 0 {
                out.push('|');
            }
            prefix.iter().for_each(|&byte| push_literal(byte, &mut out));
        }
        out.push(')');
    }
    out.push_str("(?:");
    for byte in alphabet(node).bytes().filter(u8::is_ascii) {
        push_literal(byte, &mut out);
        out.push_str("+|");
    }
    // Whole rounds of the sequence, then any non-empty beginning of it.
    out.push_str("(?i:(?:0123456789abcdef)*0");
    for &byte in &SEQUENCE[1..] {
        out.push_str("(?:");
        out.push(char::from(byte));
    }
    out.push_str(&")?".repeat(SEQUENCE.len() - 1));
    out.push_str("))");
    Ok(out)
}

/// The placeholder values of a rule whose every match is a literal prefix
/// and then a run of a fixed number of characters of one class: the runs
/// the scanner calls placeholders, each as the text that is it. `listed`
/// holds them (the sequence first, then each character repeated); `unlisted`
/// says which placeholders have too many spellings to list.
pub(crate) struct PlaceholderValues {
    pub(crate) listed: Vec<String>,
    pub(crate) unlisted: Vec<String>,
}

/// The placeholder values of the rule, for a product that excludes matches
/// containing given text, or why they cannot be listed.
pub(crate) fn placeholder_values(
    node: &Node,
    prefixes: &[Vec<u8>],
) -> Result<PlaceholderValues, Inexpressible> {
    let shape_error = || {
        Inexpressible(
            "its matches are not a literal prefix and then a fixed number of characters of one class"
                .into(),
        )
    };
    let parts: &[Node] = match node {
        Node::Concat(parts) => parts,
        other => std::slice::from_ref(other),
    };
    let is_look = |node: &Node| matches!(node, Node::Look(_));
    let start = parts
        .iter()
        .position(|node| !is_look(node))
        .ok_or_else(shape_error)?;
    let end = parts
        .iter()
        .rposition(|node| !is_look(node))
        .ok_or_else(shape_error)?;
    let Node::Repeat { sub, min, max, .. } = &parts[end] else {
        return Err(shape_error());
    };
    let (Some(class), true) = (atom_set(sub), Some(*min) == *max) else {
        return Err(shape_error());
    };
    let len = *min as usize;
    let prefix_len = parts[start..end]
        .iter()
        .map(fixed_len)
        .sum::<Option<usize>>()
        .ok_or_else(shape_error)?;
    let prefix_lens_agree = if prefixes.is_empty() {
        prefix_len == 0
    } else {
        prefixes.iter().all(|prefix| prefix.len() == prefix_len)
    };
    if !prefix_lens_agree {
        return Err(shape_error());
    }
    if prefixes
        .iter()
        .any(|prefix| prefix.last().is_some_and(|&byte| class.contains(byte)))
    {
        return Err(Inexpressible(
            "a literal prefix ends with a character the value may hold, so a placeholder run is not told apart from a longer one"
                .into(),
        ));
    }
    let mut listed = Vec::new();
    let mut unlisted = Vec::new();
    let mut sequence = String::with_capacity(len);
    let mut spellable = true;
    for &byte in SEQUENCE.iter().cycle().take(len) {
        let upper = byte.to_ascii_uppercase();
        match (class.contains(byte), upper != byte && class.contains(upper)) {
            (true, false) => sequence.push(char::from(byte)),
            (false, true) => sequence.push(char::from(upper)),
            (true, true) => {
                spellable = false;
                unlisted.push(format!(
                    "0123456789abcdef repeated, in its {} mixed-case spellings",
                    len
                ));
                break;
            }
            (false, false) => {
                spellable = false;
                break;
            }
        }
    }
    if spellable {
        listed.push(sequence);
    }
    for byte in class.bytes().filter(|byte| byte.is_ascii_graphic()) {
        listed.push(char::from(byte).to_string().repeat(len));
    }
    let unprintable = class
        .bytes()
        .filter(|byte| byte.is_ascii() && !byte.is_ascii_graphic())
        .count();
    if unprintable > 0 {
        unlisted.push(format!(
            "{unprintable} of a space or control character repeated"
        ));
    }
    unlisted.dedup();
    Ok(PlaceholderValues { listed, unlisted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::rule::{literal_prefixes, parse_pattern};

    fn node(pattern: &str) -> Node {
        lower(&parse_pattern(pattern).unwrap()).unwrap()
    }

    fn flat(pattern: &str) -> Option<String> {
        let sequences = flatten(&node(pattern))?;
        let printed: Vec<String> = sequences
            .iter()
            .map(|s| print_sequence(s, Dialect::Boost).unwrap())
            .collect();
        Some(printed.join("|"))
    }

    #[test]
    fn patterns_are_spelled_out() {
        let print = |p: &str, d| print(&node(p), d);
        assert_eq!(
            print(r"\bdapi[0-9a-f]{32}\b", Dialect::Re2).unwrap(),
            r"\bdapi[0-9a-f]{32}\b"
        );
        assert_eq!(
            print(r"(?i)ab\d{2,3}", Dialect::Pcre).unwrap(),
            "[Aa][Bb][0-9]{2,3}"
        );
        assert_eq!(
            print(r"(x|y.)z", Dialect::Pcre).unwrap(),
            r"(?:x|y[^\x0A])z"
        );
        assert_eq!(
            print(r"a\.b-[-^\]]", Dialect::Re2).unwrap(),
            r"a\.b-[\-\]\^]"
        );
        assert_eq!(
            print(r"(?m)^k=v$", Dialect::Re2).unwrap(),
            "(?m:^)k=v(?m:$)"
        );
        assert!(print(r"(?m)^k", Dialect::Pcre).is_err());
        assert!(print(r"(?m)^k", Dialect::Boost).is_err());
        assert_eq!(print(r"a{1,3}?", Dialect::Re2).unwrap(), "a{1,3}?");
        assert!(lower(&parse_pattern(r"\xFFab").unwrap()).is_err());
        assert!(lower(&parse_pattern(r"[\x80-\x90]").unwrap()).is_err());
    }

    #[test]
    fn flattening_keeps_the_order_of_tries_where_it_can_be_shown() {
        assert_eq!(
            flat(r"\bglpat-(?:[a-z]{20,230}(?:\.[0-9]{9})?|[a-z]{0,19}-\b)").unwrap(),
            r"\bglpat-[a-z]{20,230}\.[0-9]{9}|\bglpat-[a-z]{20,230}|\bglpat-[a-z]{0,19}-\b"
        );
        assert_eq!(flat(r"(?:ab|cd)(?:ef|gh)").unwrap(), "abef|abgh|cdef|cdgh");
        // `a{0,1}` before the group can end in two places that `ab` may
        // follow: `a{0,1}(?:ab)?` on "ab" matches "a", `a{0,1}ab|a{0,1}` "ab".
        assert_eq!(flat(r"a{0,1}(?:ab)?"), None);
        // The run of [a-z] can only be followed by the '.' where it ends.
        assert_eq!(
            flat(r"[a-z]{1,9}(?:\.[a-z]{0,4})?").unwrap(),
            r"[a-z]{1,9}\.[a-z]{0,4}|[a-z]{1,9}"
        );
        assert_eq!(flat(r"[a-z.]{1,9}(?:\.[a-z]{0,4})?"), None);
        // A lazy optional group is tried empty first: kept as a group.
        assert_eq!(flat(r"x(?:ab)??").unwrap(), "x(?:ab)??");
    }

    #[test]
    fn terms_are_whole_words_in_either_case() {
        assert_eq!(
            terms_re2(&["PAT".into(), "api key".into(), "-x".into()]),
            r"(?:\b[Pp][Aa][Tt]\b|\b[Aa][Pp][Ii] [Kk][Ee][Yy]\b|(?:^|[^0-9A-Za-z_])-[Xx]\b)"
        );
    }

    #[test]
    fn terms_inside_every_match() {
        let gitlab = r"\bglpat-[0-9a-z]{20}";
        let prefixes = literal_prefixes(&parse_pattern(gitlab).unwrap());
        assert!(term_in_prefixes("GLPAT", &node(gitlab), &prefixes));
        assert!(!term_in_prefixes("pat", &node(gitlab), &prefixes));
        let dapi = r"\bdapi[0-9a-f]{32}\b";
        let prefixes = literal_prefixes(&parse_pattern(dapi).unwrap());
        assert!(!term_in_prefixes("dapi", &node(dapi), &prefixes));
        let npm = r"\bnpm_[0-9a-z]{36}";
        let prefixes = literal_prefixes(&parse_pattern(npm).unwrap());
        assert!(!term_in_prefixes("npm", &node(npm), &prefixes));
    }

    #[test]
    fn placeholders() {
        let rule = node(r"\bdapi[0-9a-f]{32}\b");
        let prefixes = literal_prefixes(&parse_pattern(r"\bdapi[0-9a-f]{32}\b").unwrap());
        let values = placeholder_values(&rule, &prefixes).unwrap();
        assert_eq!(values.listed.len(), 17);
        assert_eq!(values.listed[0], "0123456789abcdef0123456789abcdef");
        assert_eq!(values.listed[1], "0".repeat(32));
        assert!(values.unlisted.is_empty());
        let aws = r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b";
        let prefixes = literal_prefixes(&parse_pattern(aws).unwrap());
        assert!(placeholder_values(&node(aws), &prefixes).is_err());
        let github = r"\bgh[pousr]_[0-9A-Za-z]{36}\b";
        let prefixes = literal_prefixes(&parse_pattern(github).unwrap());
        let values = placeholder_values(&node(github), &prefixes).unwrap();
        assert_eq!(values.listed.len(), 62);
        assert_eq!(values.unlisted.len(), 1);
        let regex = placeholder_full_match_re2(&rule, &[b"dapi".to_vec()]).unwrap();
        assert!(regex.starts_with("(?:dapi)(?:0+|1+|"), "{regex}");
        assert!(
            regex.ends_with("(?:e(?:f)?)?)?)?)?)?)?)?)?)?)?)?)?)?)?))"),
            "{regex}"
        );
    }
}
