//! The streaming scanner: one per stream, fed chunks as they arrive.
//!
//! The scanner steps the rule set's forward DFA over each input byte exactly
//! once, the way `regex-automata` searches a whole haystack, except that the
//! haystack arrives in pieces. While the DFA sits in its start state nothing is
//! pending, so the prefilter skips ahead at memory speed and every byte before
//! the next candidate is decided. While a match may be in progress, the bytes
//! from its earliest possible start are *held back*: never more than the longest
//! rule's length plus one byte (the byte after a match decides `\b` and
//! leftmost-first priority). When a match is decided it is replaced by the
//! rule's mask; the search then resumes at the match's end, re-reading only the
//! few bytes the DFA looked past it.
//!
//! Each match becomes a [`Detection`] once its after-context is complete.
//! Context is read from a [`ContextWindow`] of recent bytes, so classification
//! costs nothing until there is something to classify.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use regex_automata::PatternID;
use regex_automata::Span;
use regex_automata::dfa::Automaton;
use regex_automata::util::primitives::StateID;

use crate::scan::classify::TermSet;
use crate::scan::detection::Detection;
use crate::scan::fingerprint::Fingerprint;
use crate::scan::rule::RuleSet;
use crate::scan::window::{self, ContextWindow};

/// Receives the scanner's output.
pub trait ScanSink {
    /// The next bytes of the redacted stream, in order.
    fn write(&mut self, bytes: &[u8]);

    /// A detection whose context is complete. Detections arrive in stream order.
    fn detection(&mut self, detection: Detection) {
        let _ = detection;
    }
}

impl ScanSink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Whether matches are classified into [`Detection`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionMode {
    /// Keep a context window and report a classified detection per match.
    Classify,
    /// Only mask; keep counts but build no detections (no window, no line
    /// counting). For outputs nobody audits.
    MaskOnly,
}

/// Counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Bytes fed in.
    pub bytes_in: u64,
    /// Bytes written out.
    pub bytes_out: u64,
    /// Matches replaced by their mask.
    pub masked: u64,
    /// Matches let through by an allow-list.
    pub allowed: u64,
}

/// A point in a stream up to which everything is decided and written: where a
/// scanner can resume after a restart without changing the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    /// Stream offset: every byte before it has been written (or masked).
    pub offset: u64,
    /// Newlines before `offset` (counted only when classifying).
    pub lines: u64,
    /// The stream byte just before `offset`, which decides `\b` there.
    pub byte_before: Option<u8>,
}

impl Mark {
    /// The start of a stream: nothing before it.
    pub const START: Mark = Mark {
        offset: 0,
        lines: 0,
        byte_before: None,
    };
}

/// A contiguous run of stream bytes being scanned.
#[derive(Clone, Copy)]
struct Segment<'a> {
    bytes: &'a [u8],
    /// Stream offset of `bytes[0]`.
    base: u64,
    /// The stream byte just before `base`, if any.
    byte_before: Option<u8>,
}

impl<'a> Segment<'a> {
    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    fn index(&self, offset: u64) -> usize {
        (offset - self.base) as usize
    }

    fn slice(&self, from: u64, to: u64) -> &'a [u8] {
        &self.bytes[self.index(from)..self.index(to)]
    }

    /// The stream byte just before `offset`, which lies in `[base, end]`.
    fn byte_before(&self, offset: u64) -> Option<u8> {
        if offset > self.base {
            Some(self.bytes[self.index(offset) - 1])
        } else {
            self.byte_before
        }
    }
}

/// How a segment ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SegmentEnd {
    /// More input may follow.
    More,
    /// The stream ends with this segment.
    Stream,
}

/// The DFA's progress through the stream.
struct Search {
    /// DFA state after the bytes `[start, pos)`.
    state: StateID,
    /// Bytes of the stream fed to the DFA.
    pos: u64,
    /// Where the current leftmost-first search began: 0 or the end of the
    /// previous match.
    start: u64,
    /// No match that is still undecided can begin before this offset: the
    /// DFA was last in its start state here.
    pending_since: u64,
    /// A match the DFA has seen but may still extend or replace with a
    /// higher-priority one: its pattern and end offset.
    candidate: Option<(PatternID, u64)>,
}

/// A match waiting for its after-context.
struct PendingDetection {
    /// The rule set that found it: it may be replaced before the detection
    /// is complete.
    rules: Arc<RuleSet>,
    rule: usize,
    start: u64,
    end: u64,
    line: u64,
    fingerprint: Fingerprint,
    placeholder: bool,
    masked: bool,
    /// Terms found so far (the before-context is searched at once).
    terms: TermSet,
}

/// Decides whether to use the prefilter. A prefilter call has a fixed cost;
/// when candidates come every few dozen bytes (dense input) stepping the DFA
/// through can be cheaper. The gate measures the bytes skipped per call and,
/// when they fall below `min_skip`, closes for `CLOSED_FOR` bytes, then tries
/// again. Measured on the dense corpus: a single-literal prefilter (`memmem`)
/// pays for itself at any skip (the core is 32 % faster with it always on),
/// while a multi-literal one (the ten-rule pack) is 13 % slower there than
/// the DFA alone; so the gate only ever closes for the latter.
#[derive(Debug)]
struct PrefilterGate {
    min_skip: u64,
    calls: u32,
    skipped: u64,
    closed_until: u64,
}

impl PrefilterGate {
    const WINDOW: u32 = 64;
    const MULTI_LITERAL_MIN_SKIP: u64 = 64;
    const CLOSED_FOR: u64 = 256 * 1024;

    fn for_rules(rules: &RuleSet) -> PrefilterGate {
        PrefilterGate {
            min_skip: if rules.prefilter_is_single_literal {
                0
            } else {
                Self::MULTI_LITERAL_MIN_SKIP
            },
            calls: 0,
            skipped: 0,
            closed_until: 0,
        }
    }

    fn is_open(&self, position: u64) -> bool {
        position >= self.closed_until
    }

    /// A call skipped `bytes`, reaching `position`.
    fn skipped(&mut self, bytes: usize, position: u64) {
        self.calls += 1;
        self.skipped += bytes as u64;
        if self.calls == Self::WINDOW {
            if self.skipped < self.min_skip * u64::from(Self::WINDOW) {
                self.closed_until = position + Self::CLOSED_FOR;
            }
            self.calls = 0;
            self.skipped = 0;
        }
    }
}

/// Streams bytes through a [`RuleSet`], masking every match.
///
/// ```
/// use std::sync::Arc;
/// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
///
/// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
/// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
/// let mut scanner = Scanner::new(rules, DetectionMode::MaskOnly);
/// let mut out = Vec::new();
/// // A token split across two reads is still found.
/// scanner.feed(b"token=dapi0123456789abcdef", &mut out);
/// scanner.feed(b"0123456789abcdef end\n", &mut out);
/// scanner.finish(&mut out);
/// assert_eq!(out, b"token=dapi**** end\n");
/// # Ok::<(), logredact::RuleError>(())
/// ```
pub struct Scanner {
    rules: Arc<RuleSet>,
    mode: DetectionMode,
    search: Search,
    /// The stream's bytes `[hold_from, search.pos)`: written to no sink yet,
    /// because a match may still begin among them.
    held: Vec<u8>,
    /// Every byte before `hold_from` has been written (or masked).
    hold_from: u64,
    /// The stream byte just before `hold_from`.
    byte_before_hold: Option<u8>,
    /// The last byte fed, i.e. the stream byte just before `search.pos`.
    last_byte: Option<u8>,
    /// Scratch buffer where held bytes are joined with the start of a chunk.
    stitch: Vec<u8>,
    /// Newlines in the stream before `hold_from` (in `Classify` mode).
    lines_before_hold: u64,
    window: ContextWindow,
    pending: VecDeque<PendingDetection>,
    /// Characters of the oldest pending detection's after-context counted so
    /// far, and the stream offset where they end (0 until counting starts).
    after_chars: usize,
    after_end: u64,
    /// Scratch space for masks and for context that spans the window and a chunk.
    scratch: Vec<u8>,
    /// Whether the prefilter currently pays for itself.
    prefilter_gate: PrefilterGate,
    /// New rules waiting for a point where they can take over.
    switch: Option<Box<PendingSwitch>>,
    /// Where the last switch of rules took place, until it is taken.
    switched_at: Option<Mark>,
    stats: ScanStats,
}

/// A change of rules requested but not yet made. The new rules run alongside
/// the old ones, writing nothing, over the bytes since the request, so that
/// the switch is made only where neither rule set has a match in progress:
/// then no secret straddles the switch point, and the output is the old
/// rules' redaction before it and the new rules' after it, exactly.
struct PendingSwitch {
    /// The scanner of the new rules, fed what the stream is fed.
    shadow: Scanner,
    /// Stream offset of the request: a match of the new rules that began
    /// before it can reach at most `max_len` bytes past it.
    requested_at: u64,
}

/// A sink that keeps nothing: the shadow of a pending switch writes here.
struct Discard;

impl ScanSink for Discard {
    fn write(&mut self, _: &[u8]) {}
}

/// A buffer of many whole texts (the strings of forward records, with their
/// msgpack structure between them), with where the rules' literal prefixes
/// begin in it, searched as [`Scanner::pass_text_in`] goes through the texts
/// in order: one search of the buffer, not one per text.
pub struct Texts<'a> {
    bytes: &'a [u8],
    /// The last search: for these rules, every literal prefix beginning in
    /// `bytes[from..]` begins at `next` or after it (`None`: none begins
    /// there).
    searched: Option<Searched>,
}

struct Searched {
    rules: Arc<RuleSet>,
    from: usize,
    next: Option<usize>,
}

impl<'a> Texts<'a> {
    /// The texts of `bytes`, not yet searched.
    pub fn new(bytes: &'a [u8]) -> Texts<'a> {
        Texts {
            bytes,
            searched: None,
        }
    }

    /// Where the first literal prefix of `rules` at or after `from` begins,
    /// and the bytes searched to find it if a search was made (rather than
    /// the last one's result used).
    fn next_literal(
        &mut self,
        rules: &Arc<RuleSet>,
        from: usize,
    ) -> (Option<usize>, Option<usize>) {
        if let Some(last) = &self.searched {
            let still_first = last.next.is_none_or(|next| next >= from);
            if Arc::ptr_eq(&last.rules, rules) && last.from <= from && still_first {
                return (last.next, None);
            }
        }
        let Some(prefilter) = rules.prefilter.as_ref() else {
            return (Some(from), None);
        };
        let next = prefilter
            .find(self.bytes, Span::from(from..self.bytes.len()))
            .map(|span| span.start);
        let searched = next.unwrap_or(self.bytes.len()) - from;
        match &mut self.searched {
            Some(last) if Arc::ptr_eq(&last.rules, rules) => {
                last.from = from;
                last.next = next;
            }
            last => {
                *last = Some(Searched {
                    rules: Arc::clone(rules),
                    from,
                    next,
                })
            }
        }
        (next, Some(searched))
    }
}

impl fmt::Debug for Texts<'_> {
    // The bytes may hold secrets: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Texts")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Scanner {
    // Held bytes may be the first part of a secret: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("position", &self.search.pos)
            .field("held_bytes", &self.held.len())
            .field("pending_detections", &self.pending.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// A scanner at the start of a new stream.
    pub fn new(rules: Arc<RuleSet>, mode: DetectionMode) -> Scanner {
        Scanner::resume(rules, mode, Mark::default())
    }

    /// A scanner that continues a stream at `mark`, as saved from
    /// [`Scanner::decided`] by an earlier run: the output from there on is
    /// what the earlier scanner would have written (the context before the
    /// mark is not known, so it does not classify the first detections).
    pub fn resume(rules: Arc<RuleSet>, mode: DetectionMode, mark: Mark) -> Scanner {
        let state = rules.forward_start(mark.byte_before);
        let keep = match mode {
            DetectionMode::Classify => rules.context_bytes(),
            DetectionMode::MaskOnly => 0,
        };
        Scanner {
            mode,
            search: Search {
                state,
                pos: mark.offset,
                start: mark.offset,
                pending_since: mark.offset,
                candidate: None,
            },
            held: Vec::with_capacity(rules.max_len + 1),
            hold_from: mark.offset,
            byte_before_hold: mark.byte_before,
            last_byte: mark.byte_before,
            stitch: Vec::with_capacity(2 * (rules.max_len + 1)),
            lines_before_hold: mark.lines,
            window: ContextWindow::starting_at(keep, mark.offset),
            pending: VecDeque::new(),
            after_chars: 0,
            after_end: 0,
            scratch: Vec::new(),
            prefilter_gate: PrefilterGate::for_rules(&rules),
            switch: None,
            switched_at: None,
            stats: ScanStats::default(),
            rules,
        }
    }

    /// Goes on with `rules` from the first point, more than the longest new
    /// match past the request, where neither the old rules nor the new ones
    /// have a match in progress: that point itself if it is, else the end of
    /// the first line after it where this holds, else the end of a chunk. Before that point the output is the old rules'
    /// redaction, after it the new rules', as if the stream resumed there
    /// ([`Scanner::resume`]); a secret that straddles it cannot exist, so
    /// none is let through by either. Detections found before the switch
    /// are completed by the rule that found them. [`Scanner::take_switched`]
    /// says when the switch has been made. A newer request replaces one
    /// still pending.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
    ///
    /// let key = FingerprintKey::derive(b"k");
    /// let pat = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
    /// let user = RuleSpec { mask: "user=****".into(), ..RuleSpec::new("user", r"\buser=[a-z]{1,16}\b") };
    /// let old = Arc::new(RuleSet::new(vec![pat.clone()], key.clone())?);
    /// let new = Arc::new(RuleSet::new(vec![pat, user], key)?);
    /// let mut scanner = Scanner::new(old, DetectionMode::MaskOnly);
    /// let mut out = Vec::new();
    /// scanner.feed(b"user=alice logged in\n", &mut out);
    /// scanner.switch_rules(new);
    /// scanner.feed(b"a line long enough to pass the longest new match\n", &mut out);
    /// let switched = scanner.take_switched().expect("a point where nothing is in progress");
    /// // The first point past the reach of the new rules (21 + 36 + 1).
    /// assert_eq!(switched.offset, 58);
    /// scanner.feed(b"user=bob logged in\n", &mut out);
    /// scanner.finish(&mut out);
    /// assert_eq!(
    ///     String::from_utf8(out).unwrap(),
    ///     "user=alice logged in\na line long enough to pass the longest new match\nuser=**** logged in\n"
    /// );
    /// # Ok::<(), logredact::RuleError>(())
    /// ```
    pub fn switch_rules(&mut self, rules: Arc<RuleSet>) {
        let here = Mark {
            offset: self.search.pos,
            lines: 0,
            byte_before: self.last_byte,
        };
        self.switch = Some(Box::new(PendingSwitch {
            shadow: Scanner::resume(rules, DetectionMode::MaskOnly, here),
            requested_at: self.search.pos,
        }));
    }

    /// Where the last requested switch of rules was made, once it has been
    /// (the first call after it only).
    pub fn take_switched(&mut self) -> Option<Mark> {
        self.switched_at.take()
    }

    /// The rules the stream goes on with: those of a pending switch, or
    /// those in force.
    pub fn latest_rules(&self) -> &Arc<RuleSet> {
        self.switch
            .as_ref()
            .map_or(&self.rules, |switch| &switch.shadow.rules)
    }

    /// Feeds a pending switch's shadow, and makes the switch if the stream is
    /// now at a point where neither rule set has a match in progress.
    fn advance_switch(&mut self, chunk: &[u8]) {
        let Some(switch) = self.switch.as_mut() else {
            return;
        };
        switch.shadow.feed(chunk, &mut Discard);
        let reach = switch.requested_at + switch.shadow.rules.max_len as u64 + 1;
        let past_reach = self.search.pos >= reach;
        if past_reach && switch.shadow.held.is_empty() && self.held.is_empty() {
            let Some(switch) = self.switch.take() else {
                return;
            };
            self.take_rules(Arc::clone(&switch.shadow.rules));
        }
    }

    /// Goes on with `rules` here, where nothing is held.
    fn take_rules(&mut self, rules: Arc<RuleSet>) {
        let at = self.search.pos;
        debug_assert_eq!(self.hold_from, at);
        self.search = Search {
            state: rules.forward_start(self.last_byte),
            pos: at,
            start: at,
            pending_since: at,
            candidate: None,
        };
        if self.mode == DetectionMode::Classify {
            self.window.keep_at_least(rules.context_bytes());
        }
        self.prefilter_gate = PrefilterGate::for_rules(&rules);
        self.rules = rules;
        self.switched_at = Some(self.decided());
    }

    /// Scans the next chunk of the stream. Every byte that can no longer be
    /// part of a match is written to `sink` before this returns.
    pub fn feed<S: ScanSink>(&mut self, chunk: &[u8], sink: &mut S) {
        match &self.switch {
            None => self.feed_piece(chunk, sink),
            Some(_) => self.feed_switching(chunk, sink),
        }
    }

    /// Feeds a chunk while a switch of rules is pending, in pieces that end
    /// where the switch may be made: at the new rules' reach, then after
    /// each newline. (The output does not depend on how a stream is cut.)
    fn feed_switching<S: ScanSink>(&mut self, mut chunk: &[u8], sink: &mut S) {
        while !chunk.is_empty() {
            let Some(switch) = &self.switch else {
                return self.feed_piece(chunk, sink);
            };
            let reach = switch.requested_at + switch.shadow.rules.max_len as u64 + 1;
            let cut = match reach.checked_sub(self.search.pos) {
                Some(short) if short > 0 => chunk.len().min(short as usize),
                _ => memchr::memchr(b'\n', chunk).map_or(chunk.len(), |at| at + 1),
            };
            let (piece, rest) = chunk.split_at(cut);
            self.feed_piece(piece, sink);
            chunk = rest;
        }
    }

    fn feed_piece<S: ScanSink>(&mut self, chunk: &[u8], sink: &mut S) {
        if chunk.is_empty() {
            return;
        }
        self.stats.bytes_in += chunk.len() as u64;
        let chunk_segment = Segment {
            bytes: chunk,
            base: self.search.pos,
            byte_before: self.last_byte,
        };
        if self.held.is_empty() {
            self.scan(chunk_segment, SegmentEnd::More, sink);
        } else {
            // Join the held bytes with just enough of the chunk that whatever
            // is still undecided afterwards lies inside the chunk itself.
            let joined = chunk.len().min(self.rules.max_len + 1);
            let mut stitch = std::mem::take(&mut self.stitch);
            stitch.clear();
            stitch.extend_from_slice(&self.held);
            stitch.extend_from_slice(&chunk[..joined]);
            let segment = Segment {
                bytes: &stitch,
                base: self.hold_from,
                byte_before: self.byte_before_hold,
            };
            self.scan(segment, SegmentEnd::More, sink);
            self.stitch = stitch;
            if joined < chunk.len() {
                debug_assert!(self.hold_from >= chunk_segment.base);
                self.scan(chunk_segment, SegmentEnd::More, sink);
            }
        }
        self.last_byte = chunk.last().copied();
        if self.mode == DetectionMode::Classify {
            self.complete_detections(chunk_segment, SegmentEnd::More, sink);
            self.window.push(chunk);
        }
        self.advance_switch(chunk);
    }

    /// Ends the stream: decides and writes the held bytes and reports every
    /// pending detection.
    pub fn finish<S: ScanSink>(mut self, sink: &mut S) -> ScanStats {
        let held = std::mem::take(&mut self.held);
        let segment = Segment {
            bytes: &held,
            base: self.hold_from,
            byte_before: self.byte_before_hold,
        };
        self.scan(segment, SegmentEnd::Stream, sink);
        if self.mode == DetectionMode::Classify {
            self.complete_detections(segment, SegmentEnd::Stream, sink);
        }
        self.stats
    }

    /// Ends a stream that is being stopped rather than ending: everything
    /// decided has been written already; the undecided bytes, which may be
    /// the beginning of a secret, are not written. Pending detections are
    /// reported with the context seen so far. Returns the number of bytes
    /// dropped.
    pub fn cut<S: ScanSink>(mut self, sink: &mut S) -> (ScanStats, usize) {
        let dropped = self.restart(sink);
        (self.stats, dropped)
    }

    /// Cuts the stream here, as [`Scanner::cut`] does, and goes on with a new
    /// text at the same stream position: for a stream whose source was
    /// replaced under it (a followed file truncated, or a switch to another
    /// file), where bytes of the old text must never be judged together with
    /// bytes of the new one. The undecided bytes are dropped, not written
    /// (they may be the start of a secret whose rest was lost); pending
    /// detections are reported with the context seen so far. The new text
    /// starts as a stream does: nothing before it (`\b` holds at its start),
    /// an empty context window. Stream offsets, line numbers and counters go
    /// on. Returns the number of bytes dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
    ///
    /// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
    /// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
    /// let mut scanner = Scanner::new(rules, DetectionMode::MaskOnly);
    /// let mut out = Vec::new();
    /// scanner.feed(b"old text, then a token cut short: dapi0123456789abcdef", &mut out);
    /// assert_eq!(scanner.restart(&mut out), 20);
    /// // The new text is never joined to the dropped bytes.
    /// scanner.feed(b"0123456789abcdef new text\n", &mut out);
    /// scanner.finish(&mut out);
    /// assert_eq!(out, b"old text, then a token cut short: 0123456789abcdef new text\n");
    /// # Ok::<(), logredact::RuleError>(())
    /// ```
    pub fn restart<S: ScanSink>(&mut self, sink: &mut S) -> usize {
        let held = std::mem::take(&mut self.held);
        if self.mode == DetectionMode::Classify {
            let segment = Segment {
                bytes: &held,
                base: self.hold_from,
                byte_before: self.byte_before_hold,
            };
            self.complete_detections(segment, SegmentEnd::Stream, sink);
            // Line numbers count the stream's newlines, written or not.
            self.lines_before_hold += memchr::memchr_iter(b'\n', &held).count() as u64;
        }
        let dropped = held.len();
        self.held = held;
        self.held.clear();
        let at = self.search.pos;
        self.search = Search {
            state: self.rules.forward_start(None),
            pos: at,
            start: at,
            pending_since: at,
            candidate: None,
        };
        self.hold_from = at;
        self.byte_before_hold = None;
        self.last_byte = None;
        let keep = match self.mode {
            DetectionMode::Classify => self.rules.context_bytes(),
            DetectionMode::MaskOnly => 0,
        };
        self.window.reset_at(keep, at);
        debug_assert!(self.pending.is_empty());
        self.after_chars = 0;
        self.after_end = 0;
        // A new text starts with nothing before it: nothing can straddle
        // this point, so a pending switch is made here.
        if let Some(switch) = self.switch.take() {
            self.take_rules(Arc::clone(&switch.shadow.rules));
            if self.mode == DetectionMode::Classify {
                self.window.reset_at(self.rules.context_bytes(), at);
            }
        }
        dropped
    }

    /// Ends a text inside the stream: the held bytes are decided as at the
    /// end of the stream (a match cannot go on past here, and `\b` holds
    /// here) and written, and the next byte fed starts a new text, as at the
    /// start of a stream (`\b` holds before it). Unlike [`Scanner::restart`]
    /// nothing is dropped and the context window goes on: texts ended this
    /// way are one another's context, while no match spans two of them. For
    /// the strings of a structured record (Fluent forward), each masked on
    /// its own with the record as context. Stream offsets, line numbers and
    /// counters go on; a pending switch of rules is made here, where nothing
    /// can straddle.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
    ///
    /// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
    /// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
    /// let mut scanner = Scanner::new(rules, DetectionMode::MaskOnly);
    /// let mut out = Vec::new();
    /// // A token that ends a text is masked at once...
    /// scanner.feed(b"key=dapi0123456789abcdef0123456789abcdef", &mut out);
    /// scanner.end_text(&mut out);
    /// assert_eq!(out, b"key=dapi****");
    /// // ...and one text never completes a token begun in another.
    /// scanner.feed(b"dapi0123456789abcdef", &mut out);
    /// scanner.end_text(&mut out);
    /// scanner.feed(b"0123456789abcdef", &mut out);
    /// scanner.finish(&mut out);
    /// assert_eq!(out, b"key=dapi****dapi0123456789abcdef0123456789abcdef");
    /// # Ok::<(), logredact::RuleError>(())
    /// ```
    pub fn end_text<S: ScanSink>(&mut self, sink: &mut S) {
        let held = std::mem::take(&mut self.held);
        let segment = Segment {
            bytes: &held,
            base: self.hold_from,
            byte_before: self.byte_before_hold,
        };
        self.scan(segment, SegmentEnd::Stream, sink);
        debug_assert_eq!(self.hold_from, self.search.pos);
        self.held = held;
        self.held.clear();
        let at = self.search.pos;
        self.search = Search {
            state: self.rules.forward_start(None),
            pos: at,
            start: at,
            pending_since: at,
            candidate: None,
        };
        self.byte_before_hold = None;
        self.last_byte = None;
        if let Some(switch) = self.switch.take() {
            self.take_rules(Arc::clone(&switch.shadow.rules));
        }
    }

    /// Passes a whole text in which no match can begin, without stepping the
    /// automaton through it: the same as [`Scanner::feed`] then
    /// [`Scanner::end_text`] when they find nothing, except that the text is
    /// not written to a sink — the caller writes it on, unchanged. Counters,
    /// offsets, line numbers and the context window go on as if it had been
    /// fed.
    ///
    /// Returns false, having changed nothing, when the text must be fed
    /// instead: it is as long as a match and the rules' literal prefixes are
    /// found in it (or the rules have none), or the scanner is not at the
    /// start of a text (bytes were fed since the stream's start, the last
    /// [`Scanner::end_text`] or [`Scanner::restart`]), or a switch of rules
    /// is pending, or a detection waits for its after-context. The scanner
    /// decides this from the text alone: a caller cannot let a match through.
    ///
    /// For the many short strings of structured records (Fluent forward),
    /// where setting up a search per string would cost more than the search;
    /// [`Scanner::pass_text_in`] searches many texts at once.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
    ///
    /// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
    /// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
    /// let mut scanner = Scanner::new(rules, DetectionMode::MaskOnly);
    /// let mut out = Vec::new();
    /// for text in [&b"level=info msg=started"[..], b"token=dapi0123456789abcdef0123456789abcdef"] {
    ///     if scanner.pass_text(text) {
    ///         out.extend_from_slice(text);
    ///     } else {
    ///         scanner.feed(text, &mut out);
    ///         scanner.end_text(&mut out);
    ///     }
    ///     out.push(b'|');
    /// }
    /// assert_eq!(out, b"level=info msg=started|token=dapi****|");
    /// # Ok::<(), logredact::RuleError>(())
    /// ```
    pub fn pass_text(&mut self, text: &[u8]) -> bool {
        self.pass_text_in(&mut Texts::new(text), 0..text.len())
    }

    /// [`Scanner::pass_text`] for the text `texts[range]`, a whole text of a
    /// buffer of many: the rules' literal prefixes are searched once for all
    /// the texts of the buffer passed in order, not once per text. The
    /// search looks past the text's end, so a buffer should hold little but
    /// texts (the strings of records and their msgpack structure).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logredact::{DetectionMode, FingerprintKey, RuleSet, RuleSpec, Scanner};
    /// use logredact::scan::scanner::Texts;
    ///
    /// let rule = RuleSpec { mask: "dapi****".into(), ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b") };
    /// let rules = Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"k"))?);
    /// let mut scanner = Scanner::new(rules, DetectionMode::MaskOnly);
    /// let buffer = b"msg=started, pod=web-1 user=alice, token=dapi0123456789abcdef0123456789abcdef";
    /// let mut texts = Texts::new(buffer);
    /// // The first search finds the token, past these texts: they pass.
    /// assert!(scanner.pass_text_in(&mut texts, 0..11));
    /// assert!(scanner.pass_text_in(&mut texts, 13..34));
    /// assert!(!scanner.pass_text_in(&mut texts, 36..buffer.len()));
    /// # Ok::<(), logredact::RuleError>(())
    /// ```
    pub fn pass_text_in(&mut self, texts: &mut Texts<'_>, range: std::ops::Range<usize>) -> bool {
        let at_text_start = self.last_byte.is_none()
            && self.held.is_empty()
            && self.search.candidate.is_none()
            && self.byte_before_hold.is_none()
            && self.hold_from == self.search.pos;
        if !at_text_start
            || self.switch.is_some()
            || !self.pending.is_empty()
            || !self.cannot_match(texts, range.clone())
        {
            return false;
        }
        // The search is in the start state with nothing before it, as at the
        // end of a text: it stays there, and only the offsets move on.
        debug_assert_eq!(self.search.state, self.rules.forward_start(None));
        let text = &texts.bytes[range];
        let len = text.len() as u64;
        self.stats.bytes_in += len;
        self.stats.bytes_out += len;
        if self.mode == DetectionMode::Classify {
            self.lines_before_hold += memchr::memchr_iter(b'\n', text).count() as u64;
            self.window.push(text);
        }
        let end = self.search.pos + len;
        self.search.pos = end;
        self.search.start = end;
        self.search.pending_since = end;
        self.hold_from = end;
        true
    }

    /// Whether no match of the rules can begin in the whole text
    /// `texts[range]`: it is shorter than any match, or no literal prefix
    /// of the rules begins in it (a prefilter has no false negatives, and a
    /// match begins with a literal prefix wherever it is). False when
    /// unsure.
    fn cannot_match(&mut self, texts: &mut Texts<'_>, range: std::ops::Range<usize>) -> bool {
        if range.len() < self.rules.min_len {
            return true;
        }
        if self.rules.prefilter.is_none() || !self.prefilter_gate.is_open(self.search.pos) {
            return false;
        }
        let (next, searched) = texts.next_literal(&self.rules, range.start);
        if let Some(searched) = searched {
            self.prefilter_gate
                .skipped(searched, self.search.pos + searched as u64);
        }
        next.is_none_or(|at| at >= range.end)
    }

    /// The point up to which everything is decided and written.
    pub fn decided(&self) -> Mark {
        Mark {
            offset: self.hold_from,
            lines: self.lines_before_hold,
            byte_before: self.byte_before_hold,
        }
    }

    /// Bytes received but not yet written, because a match may begin among them.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Whether matches are classified.
    pub fn mode(&self) -> DetectionMode {
        self.mode
    }

    /// Counters so far.
    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// Runs the DFA over the rest of `segment` (from `search.pos`), writing and
    /// masking as matches are decided, and leaves in `held` the bytes that are
    /// still undecided. Precondition: `hold_from >= segment.base`.
    fn scan<S: ScanSink>(&mut self, segment: Segment<'_>, end: SegmentEnd, sink: &mut S) {
        let rules = Arc::clone(&self.rules);
        let dfa = &rules.forward;
        let bytes = segment.bytes;
        let mut at = segment.index(self.search.pos);
        let mut state = self.search.state;
        loop {
            // Nothing is pending in the start state: skip to the next place a
            // match could begin.
            let prefilter = rules
                .prefilter
                .as_ref()
                .filter(|_| self.prefilter_gate.is_open(segment.base + at as u64));
            if self.search.candidate.is_none() && dfa.is_start_state(state) {
                self.search.pending_since = segment.base + at as u64;
                if let Some(prefilter) = prefilter {
                    let next = match prefilter.find(bytes, Span::from(at..bytes.len())) {
                        Some(span) => span.start,
                        // A prefix may still begin in the last few bytes.
                        None => bytes
                            .len()
                            .saturating_sub(prefilter.max_needle_len().saturating_sub(1))
                            .max(at),
                    };
                    self.prefilter_gate
                        .skipped(next - at, segment.base + next as u64);
                    if next > at {
                        at = next;
                        state = rules.forward_start(Some(bytes[at - 1]));
                        self.search.pending_since = segment.base + at as u64;
                    }
                }
            }
            // The hot loop: plain transitions until something needs attention.
            // Without a prefilter, the start state needs no attention: only
            // the point where nothing is pending moves on (kept in a local,
            // written back once).
            let mut special = false;
            let skip_start_states = prefilter.is_none() && self.search.candidate.is_none();
            let mut idle_at = None;
            while let Some(&byte) = bytes.get(at) {
                // SAFETY: `state` only ever comes from this DFA's own start
                // states and transitions, so it is a valid state ID for it.
                state = unsafe { dfa.next_state_unchecked(state, byte) };
                at += 1;
                if dfa.is_special_state(state) {
                    if skip_start_states && dfa.is_start_state(state) {
                        idle_at = Some(at);
                        continue;
                    }
                    special = true;
                    break;
                }
            }
            if let Some(idle_at) = idle_at {
                self.search.pending_since = segment.base + idle_at as u64;
            }
            if special {
                if dfa.is_start_state(state) {
                    continue;
                }
                if dfa.is_match_state(state) {
                    // Matches are reported one byte late: this one ends before
                    // the byte just consumed.
                    let pattern = dfa.match_pattern(state, 0);
                    self.search.candidate = Some((pattern, segment.base + at as u64 - 1));
                    if !rules.is_final_match(state) {
                        // A longer or higher-priority match may still follow.
                        continue;
                    }
                } else if !dfa.is_dead_state(state) {
                    unreachable!("the forward DFA is built without quit bytes");
                }
                // Nothing can extend or outrank the candidate: it is the match.
                let match_end = self.decide_candidate(segment, sink);
                at = segment.index(match_end);
                state = rules.forward_start(segment.byte_before(match_end));
                continue;
            }
            // The segment is used up.
            self.search.state = state;
            self.search.pos = segment.end();
            if end == SegmentEnd::Stream {
                state = dfa.next_eoi_state(state);
                if dfa.is_match_state(state) {
                    let pattern = dfa.match_pattern(state, 0);
                    self.search.candidate = Some((pattern, segment.end()));
                }
                if self.search.candidate.is_some() {
                    let match_end = self.decide_candidate(segment, sink);
                    at = segment.index(match_end);
                    state = rules.forward_start(segment.byte_before(match_end));
                    continue;
                }
                self.write_decided(segment, segment.end(), sink);
            } else {
                let undecided_from = if self.search.candidate.is_none() && dfa.is_start_state(state)
                {
                    self.search.pos
                } else {
                    // A match is at most `max_len` bytes and is reported one
                    // byte late, so nothing older can still be part of one.
                    self.search
                        .pending_since
                        .max(self.search.pos.saturating_sub(rules.max_len as u64 + 1))
                };
                self.write_decided(segment, undecided_from.max(self.hold_from), sink);
                self.held.clear();
                self.held
                    .extend_from_slice(segment.slice(self.hold_from, segment.end()));
            }
            return;
        }
    }

    /// Writes the bytes `[hold_from, to)` of `segment` unchanged.
    fn write_decided<S: ScanSink>(&mut self, segment: Segment<'_>, to: u64, sink: &mut S) {
        if to <= self.hold_from {
            return;
        }
        let bytes = segment.slice(self.hold_from, to);
        if self.mode == DetectionMode::Classify {
            self.lines_before_hold += memchr::memchr_iter(b'\n', bytes).count() as u64;
        }
        sink.write(bytes);
        self.stats.bytes_out += bytes.len() as u64;
        self.byte_before_hold = bytes.last().copied();
        self.hold_from = to;
    }

    /// Writes the decided candidate match masked (with the bytes before it),
    /// records its detection, and restarts the search at its end, which is
    /// returned.
    fn decide_candidate<S: ScanSink>(&mut self, segment: Segment<'_>, sink: &mut S) -> u64 {
        let rules = Arc::clone(&self.rules);
        let Some((pattern, end)) = self.search.candidate.take() else {
            unreachable!("a leftmost-first DFA only dies after a match");
        };
        let floor = self.search.start.max(segment.base);
        let start = rules
            .match_start(
                pattern,
                segment.bytes,
                segment.index(floor),
                segment.index(end),
                (end < segment.end()).then(|| segment.bytes[segment.index(end)]),
                segment.byte_before(floor),
            )
            .map(|index| segment.base + index as u64)
            // Never reached: the reverse DFA finds every match the forward DFA
            // found. Failing closed means masking from the earliest possible start.
            .unwrap_or_else(|| self.hold_from.max(end.saturating_sub(rules.max_len as u64)));
        self.write_decided(segment, start, sink);

        let rule = &rules.rules[pattern.as_usize()];
        let value = segment.slice(start, end);
        // A fingerprint is a keyed hash: computed only for someone who uses it.
        let mut fingerprint = None;
        let mut fingerprint_of =
            |value: &[u8]| *fingerprint.get_or_insert_with(|| rules.key.fingerprint(value));
        let masked = !rule.allows(value, || fingerprint_of(value));
        if masked {
            self.stats.masked += 1;
            let mask_len = match rule.mask.as_literal() {
                Some(text) => {
                    sink.write(text);
                    text.len()
                }
                None => {
                    self.scratch.clear();
                    rule.mask.render(fingerprint_of(value), &mut self.scratch);
                    sink.write(&self.scratch);
                    self.scratch.len()
                }
            };
            self.stats.bytes_out += mask_len as u64;
        } else {
            self.stats.allowed += 1;
            sink.write(value);
            self.stats.bytes_out += value.len() as u64;
        }
        if self.mode == DetectionMode::Classify {
            let mut terms = TermSet::default();
            let context_from = start
                .saturating_sub(4 * rule.window as u64)
                .max(self.window.start().min(segment.base));
            let before = view_bytes(
                &self.window,
                segment,
                context_from,
                start,
                &mut self.scratch,
            );
            let context = &before[window::start_of_last_chars(before, rule.window)..];
            rule.classifier.find_terms(context, &mut terms);
            self.pending.push_back(PendingDetection {
                rules: Arc::clone(&rules),
                rule: pattern.as_usize(),
                start,
                end,
                line: self.lines_before_hold + 1,
                fingerprint: fingerprint_of(value),
                placeholder: rule.is_placeholder(value),
                masked,
                terms,
            });
            self.lines_before_hold += memchr::memchr_iter(b'\n', value).count() as u64;
        }
        self.byte_before_hold = value.last().copied();
        self.hold_from = end;
        self.search.start = end;
        self.search.pending_since = end;
        end
    }

    /// Reports, in order, every pending detection whose after-context is
    /// complete in the bytes seen so far (all of them at the end of the stream).
    fn complete_detections<S: ScanSink>(
        &mut self,
        segment: Segment<'_>,
        end: SegmentEnd,
        sink: &mut S,
    ) {
        let seen_to = self.search.pos;
        let more_may_follow = end == SegmentEnd::More;
        while let Some(head) = self.pending.front() {
            let rules = Arc::clone(&head.rules);
            let rule = &rules.rules[head.rule];
            if self.after_end < head.end {
                self.after_end = head.end;
                self.after_chars = 0;
            }
            if self.after_chars < rule.window && self.after_end < seen_to {
                let ahead = view_bytes(
                    &self.window,
                    segment,
                    self.after_end,
                    seen_to,
                    &mut self.scratch,
                );
                let count =
                    window::count_chars(ahead, rule.window - self.after_chars, more_may_follow);
                self.after_chars += count.chars;
                self.after_end += count.bytes as u64;
            }
            if self.after_chars < rule.window && more_may_follow {
                return;
            }
            let Some(mut head) = self.pending.pop_front() else {
                return;
            };
            let after_end = self.after_end;
            // The next detection counts its own after-context from its end.
            self.after_end = 0;
            let after = view_bytes(
                &self.window,
                segment,
                head.end,
                after_end,
                &mut self.scratch,
            );
            rule.classifier.find_terms(after, &mut head.terms);
            let classification = rule.classifier.classify(&head.terms, head.placeholder);
            sink.detection(Detection {
                rule: Arc::clone(&rule.id),
                offset: head.start,
                line: head.line,
                confidence: classification.confidence,
                keywords: classification.keywords,
                exclusions: classification.exclusions,
                placeholder: head.placeholder,
                masked: head.masked,
                fingerprint: head.fingerprint,
            });
        }
    }
}

/// The stream bytes `[from, to)`, read from the window of earlier bytes and
/// the segment being scanned, copied into `scratch` only if they span both.
fn view_bytes<'a>(
    window: &'a ContextWindow,
    segment: Segment<'a>,
    from: u64,
    to: u64,
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    if from >= segment.base && to <= segment.end() {
        return segment.slice(from, to);
    }
    if from >= window.start() && to <= window.end() {
        return window.slice(from, to);
    }
    // The segment begins inside or right after the window.
    let split = window.end().min(to);
    scratch.clear();
    scratch.extend_from_slice(window.slice(from.max(window.start()), split));
    scratch.extend_from_slice(segment.slice(split.max(segment.base), to));
    scratch
}

/// Redacts a complete byte string at once: for messages and other small texts
/// that must never carry a secret.
pub fn redact(rules: &Arc<RuleSet>, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut scanner = Scanner::new(Arc::clone(rules), DetectionMode::MaskOnly);
    scanner.feed(input, &mut out);
    scanner.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fingerprint::FingerprintKey;
    use crate::scan::rule::RuleSpec;
    use proptest::prelude::*;

    fn rules() -> Arc<RuleSet> {
        let rule = RuleSpec {
            mask: "dapi****".into(),
            ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b")
        };
        Arc::new(RuleSet::new(vec![rule], FingerprintKey::derive(b"test")).unwrap())
    }

    #[derive(Default)]
    struct Collected {
        out: Vec<u8>,
        detections: Vec<(u64, u64)>,
    }

    impl ScanSink for Collected {
        fn write(&mut self, bytes: &[u8]) {
            self.out.extend_from_slice(bytes);
        }

        fn detection(&mut self, detection: Detection) {
            self.detections.push((detection.offset, detection.line));
        }
    }

    fn feed_in_pieces(scanner: &mut Scanner, text: &[u8], cuts: &[usize], sink: &mut Collected) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for to in cuts.into_iter().chain([text.len()]) {
            scanner.feed(&text[from..to], sink);
            from = to;
        }
    }

    /// Text where tokens, their prefixes and near misses are frequent.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"dapi".to_vec()),
            Just(b"dapi0123456789abcdef0123456789abcdef".to_vec()),
            Just(b"0123456789abcdef".to_vec()),
            Just(b"\n".to_vec()),
            Just(b" bearer ".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// The default rule plus one that masks `user=NAME`, with other masks.
    fn other_rules() -> Arc<RuleSet> {
        let pat = RuleSpec {
            mask: "[pat]".into(),
            ..RuleSpec::new("databricks-pat", r"\bdapi[0-9a-f]{32}\b")
        };
        let user = RuleSpec {
            mask: "user=****".into(),
            ..RuleSpec::new("user", r"\buser=[a-f]{1,8}\b")
        };
        Arc::new(RuleSet::new(vec![user, pat], FingerprintKey::derive(b"test")).unwrap())
    }

    /// What a switch at `at` must write: the old rules' redaction of the
    /// text before it, then the new rules' of the rest, resumed there.
    fn switched_reference(
        old: &Arc<RuleSet>,
        new: &Arc<RuleSet>,
        text: &[u8],
        at: usize,
        mode: DetectionMode,
    ) -> Collected {
        let mut expected = Collected::default();
        let mut before = Scanner::new(Arc::clone(old), mode);
        before.feed(&text[..at], &mut expected);
        before.finish(&mut expected);
        let mark = Mark {
            offset: at as u64,
            lines: text[..at].iter().filter(|&&b| b == b'\n').count() as u64,
            byte_before: at.checked_sub(1).map(|i| text[i]),
        };
        let mut after = Scanner::resume(Arc::clone(new), mode, mark);
        after.feed(&text[at..], &mut expected);
        after.finish(&mut expected);
        expected
    }

    /// A match of any of `rules`, found by another engine and starting
    /// anywhere, that begins before `at` and ends after it. (The rules of
    /// these tests have no overlapping matches, so every start is one the
    /// scanner could take.)
    fn straddler(rules: &RuleSet, text: &[u8], at: usize) -> Option<(usize, usize)> {
        rules.specs().iter().find_map(|spec| {
            let regex = regex::bytes::Regex::new(&format!("(?-u){}", spec.pattern)).unwrap();
            (at.saturating_sub(rules.max_match_len())..at).find_map(|start| {
                regex
                    .find_at(text, start)
                    .filter(|m| m.start() == start && m.end() > at)
                    .map(|m| (m.start(), m.end()))
            })
        })
    }

    /// Text where tokens, `user=` values and their near misses are frequent.
    fn text_with_users() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"dapi0123456789abcdef0123456789abcdef".to_vec()),
            Just(b"dapi0123".to_vec()),
            Just(b"user=".to_vec()),
            Just(b"abcdef".to_vec()),
            Just(b"\n".to_vec()),
            Just(b" ".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        /// A switch of rules, requested between any two chunks, is made at a
        /// point where the output is exactly the old rules' redaction before
        /// it and the new rules' after it, detections included.
        #[test]
        fn a_switch_of_rules_is_old_before_its_point_and_new_after(
            text in text_with_users(),
            cuts in proptest::collection::vec(any::<usize>(), 1..12),
            request in any::<usize>(),
            forward in any::<bool>(),
            classify in any::<bool>(),
        ) {
            let mode = if classify { DetectionMode::Classify } else { DetectionMode::MaskOnly };
            let (old, new) = if forward { (rules(), other_rules()) } else { (other_rules(), rules()) };
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
            cuts.push(text.len());
            cuts.sort_unstable();
            let request_after = request % cuts.len();
            let mut scanner = Scanner::new(Arc::clone(&old), mode);
            let mut got = Collected::default();
            let (mut from, mut requested_at, mut switched) = (0, None, None);
            for (i, to) in cuts.into_iter().enumerate() {
                if i == request_after {
                    scanner.switch_rules(Arc::clone(&new));
                    requested_at = Some(from);
                }
                scanner.feed(&text[from..to], &mut got);
                if let Some(mark) = scanner.take_switched() {
                    prop_assert!(switched.is_none(), "one switch");
                    switched = Some(mark);
                }
                from = to;
            }
            scanner.finish(&mut got);
            let requested_at = requested_at.unwrap();
            let expected = match switched {
                Some(mark) => {
                    let at = mark.offset as usize;
                    prop_assert!(at > requested_at + new.max_match_len());
                    prop_assert!(straddler(&old, &text, at).is_none(), "old rules straddle {}", at);
                    prop_assert!(straddler(&new, &text, at).is_none(), "new rules straddle {}", at);
                    prop_assert_eq!(mark.byte_before, at.checked_sub(1).map(|i| text[i]));
                    switched_reference(&old, &new, &text, at, mode)
                }
                // Not switched yet: the old rules all along.
                None => switched_reference(&old, &new, &text, text.len(), mode),
            };
            prop_assert_eq!(
                String::from_utf8_lossy(&got.out),
                String::from_utf8_lossy(&expected.out)
            );
            if classify {
                prop_assert_eq!(&got.detections, &expected.detections);
            }
        }

        /// Passing a text is feeding it and ending it: the same output (the
        /// passed text written by the caller), detections, counters and
        /// position, whatever texts, restarts and modes come before, and
        /// whether the texts are searched alone or in a buffer of many
        /// (with other bytes, where literals may be, between them).
        #[test]
        fn passing_a_text_is_feeding_and_ending_it(
            texts in proptest::collection::vec((text(), text(), 0..5u8), 1..12),
            classify in any::<bool>(),
        ) {
            let mode = if classify { DetectionMode::Classify } else { DetectionMode::MaskOnly };
            let mut buffer = Vec::new();
            let mut ranges = Vec::new();
            for (gap, text, _) in &texts {
                buffer.extend_from_slice(gap);
                ranges.push(buffer.len()..buffer.len() + text.len());
                buffer.extend_from_slice(text);
            }
            let mut in_buffer = Texts::new(&buffer);
            let mut fed = Scanner::new(rules(), mode);
            let mut passing = Scanner::new(rules(), mode);
            let (mut expected, mut got) = (Collected::default(), Collected::default());
            for ((_, text, step), range) in texts.iter().zip(ranges) {
                match step {
                    // A text fed without ending it: the next is not at a
                    // text's start.
                    0 => {
                        fed.feed(text, &mut expected);
                        passing.feed(text, &mut got);
                    }
                    1 => {
                        fed.restart(&mut expected);
                        passing.restart(&mut got);
                    }
                    _ => {
                        fed.feed(text, &mut expected);
                        fed.end_text(&mut expected);
                        let passed = match step {
                            2 => passing.pass_text(text),
                            _ => passing.pass_text_in(&mut in_buffer, range),
                        };
                        if passed {
                            got.out.extend_from_slice(text);
                        } else {
                            passing.feed(text, &mut got);
                            passing.end_text(&mut got);
                        }
                    }
                }
                prop_assert_eq!(passing.decided(), fed.decided());
                prop_assert_eq!(passing.stats(), fed.stats());
            }
            prop_assert_eq!(fed.finish(&mut expected), passing.finish(&mut got));
            prop_assert_eq!(&got.out, &expected.out);
            prop_assert_eq!(&got.detections, &expected.detections);
        }

        /// After a restart the scanner goes on exactly as a cut of the old
        /// text followed by a new stream, whatever the chunking.
        #[test]
        fn a_restart_is_a_cut_then_a_new_stream(
            old in text(),
            new in text(),
            old_cuts in proptest::collection::vec(any::<usize>(), 0..4),
            new_cuts in proptest::collection::vec(any::<usize>(), 0..4),
            classify in any::<bool>(),
        ) {
            let mode = if classify { DetectionMode::Classify } else { DetectionMode::MaskOnly };
            let mut expected = Collected::default();
            let mut whole_old = Scanner::new(rules(), mode);
            whole_old.feed(&old, &mut expected);
            let (_, dropped) = whole_old.cut(&mut expected);
            let mut whole_new = Scanner::new(rules(), mode);
            let mut new_part = Collected::default();
            whole_new.feed(&new, &mut new_part);
            whole_new.finish(&mut new_part);
            expected.out.extend_from_slice(&new_part.out);
            let old_lines = old.iter().filter(|&&b| b == b'\n').count() as u64;
            expected.detections.extend(
                new_part.detections.iter().map(|(offset, line)| (offset + old.len() as u64, line + old_lines)),
            );

            let mut scanner = Scanner::new(rules(), mode);
            let mut got = Collected::default();
            feed_in_pieces(&mut scanner, &old, &old_cuts, &mut got);
            prop_assert_eq!(scanner.restart(&mut got), dropped);
            prop_assert_eq!(scanner.decided().offset, old.len() as u64);
            prop_assert_eq!(scanner.decided().byte_before, None);
            feed_in_pieces(&mut scanner, &new, &new_cuts, &mut got);
            scanner.finish(&mut got);
            prop_assert_eq!(&got.out, &expected.out);
            if classify {
                prop_assert_eq!(&got.detections, &expected.detections);
            }
        }
    }
}
