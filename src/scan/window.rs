//! The rolling context window and character counting.
//!
//! Context is measured in characters (SPEC §4): a valid UTF-8 sequence is one
//! character and every byte that is not part of one is a character of its own.
//! Counting happens only around detections, never on the hot path; the window
//! itself is a plain byte history long enough to hold any context.

/// The most recent bytes of one stream, long enough to rebuild the context of
/// any detection that is still waiting for its after-context.
///
/// Invariant: `bytes` holds the stream's bytes `[end - bytes.len(), end)`, and
/// at least `min(keep, end)` of them.
#[derive(Clone)]
pub(crate) struct ContextWindow {
    bytes: Vec<u8>,
    end: u64,
    keep: usize,
}

impl ContextWindow {
    /// A window that always retains at least the last `keep` bytes.
    pub(crate) fn new(keep: usize) -> ContextWindow {
        ContextWindow {
            bytes: Vec::with_capacity(2 * keep),
            end: 0,
            keep,
        }
    }

    /// A window for a stream that resumes at offset `end`, with no history.
    pub(crate) fn starting_at(keep: usize, end: u64) -> ContextWindow {
        ContextWindow {
            end,
            ..ContextWindow::new(keep)
        }
    }

    /// Forgets the history, as a new window that retains `keep` bytes and
    /// resumes at offset `end` would, keeping the memory for reuse.
    pub(crate) fn reset_at(&mut self, keep: usize, end: u64) {
        self.bytes.clear();
        self.end = end;
        self.keep = keep;
    }

    /// Retains at least the last `keep` bytes from now on (a stream whose
    /// rules changed keeps what either rule set needs).
    pub(crate) fn keep_at_least(&mut self, keep: usize) {
        self.keep = self.keep.max(keep);
    }

    /// Appends the next bytes of the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.end += chunk.len() as u64;
        if chunk.len() >= self.keep {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - self.keep..]);
            return;
        }
        // Trim only when twice the retained size is reached, so that the
        // memmove is paid once per `keep` bytes, not once per push.
        if self.bytes.len() + chunk.len() > 2 * self.keep {
            let excess = self.bytes.len() + chunk.len() - self.keep;
            self.bytes.drain(..excess);
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// Stream offset of the first retained byte.
    pub(crate) fn start(&self) -> u64 {
        self.end - self.bytes.len() as u64
    }

    /// Stream offset just past the last retained byte.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// The retained bytes `[from, to)`; both must lie within the window.
    pub(crate) fn slice(&self, from: u64, to: u64) -> &[u8] {
        let start = self.start();
        &self.bytes[(from - start) as usize..(to - start) as usize]
    }
}

/// Length in bytes of the character that starts `bytes`, or `None` if `bytes`
/// ends inside what may still become a valid sequence and more input may come.
pub(crate) fn next_char_len(bytes: &[u8], more_may_follow: bool) -> Option<usize> {
    let first = *bytes.first()?;
    let expected = match first {
        0x00..=0x7f => return Some(1),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Some(1),
    };
    let available = &bytes[..expected.min(bytes.len())];
    match std::str::from_utf8(available) {
        Ok(_) => Some(expected),
        // A valid but unfinished sequence: the next bytes decide it.
        Err(e) if e.error_len().is_none() && more_may_follow => None,
        Err(_) => Some(1),
    }
}

/// Length in bytes of the character that ends `bytes` (which must not be
/// empty), decoding backwards.
pub(crate) fn prev_char_len(bytes: &[u8]) -> usize {
    let is_continuation = |b: u8| (0x80..=0xbf).contains(&b);
    let len = bytes.len();
    if !is_continuation(bytes[len - 1]) {
        return 1;
    }
    for n in 2..=4.min(len) {
        let lead = bytes[len - n];
        if !is_continuation(lead) {
            return if std::str::from_utf8(&bytes[len - n..]).is_ok() {
                n
            } else {
                1
            };
        }
    }
    1
}

/// Index in `bytes` where its last `chars` characters begin (0 if it holds
/// fewer).
pub(crate) fn start_of_last_chars(bytes: &[u8], chars: usize) -> usize {
    let mut end = bytes.len();
    for _ in 0..chars {
        if end == 0 {
            break;
        }
        end -= prev_char_len(&bytes[..end]);
    }
    end
}

/// Progress of counting characters forwards through a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CharCount {
    /// Bytes consumed by the counted characters.
    pub(crate) bytes: usize,
    /// Characters counted.
    pub(crate) chars: usize,
}

/// Counts up to `limit` characters at the start of `bytes`. Stops early at a
/// sequence that the next bytes would decide, unless the stream has ended.
pub(crate) fn count_chars(bytes: &[u8], limit: usize, more_may_follow: bool) -> CharCount {
    let mut count = CharCount { bytes: 0, chars: 0 };
    while count.chars < limit && count.bytes < bytes.len() {
        match next_char_len(&bytes[count.bytes..], more_may_follow) {
            Some(len) => {
                count.bytes += len;
                count.chars += 1;
            }
            None => break,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_at_least_keep_bytes() {
        let mut window = ContextWindow::new(4);
        for byte in b"abcdefghij" {
            window.push(&[*byte]);
            assert!(window.end() - window.start() >= 4.min(window.end()));
        }
        assert_eq!(window.end(), 10);
        assert_eq!(window.slice(6, 10), b"ghij");
        window.push(b"0123456789");
        assert_eq!(window.start(), 16);
        assert_eq!(window.slice(16, 20), b"6789");
    }

    #[test]
    fn characters_forward() {
        // 'é' is two bytes, '€' three, '😀' four; 0xff is invalid on its own.
        let text = "aé€😀".as_bytes();
        assert_eq!(
            count_chars(text, 10, false),
            CharCount {
                bytes: 10,
                chars: 4
            }
        );
        assert_eq!(
            count_chars(text, 2, false),
            CharCount { bytes: 3, chars: 2 }
        );
        assert_eq!(count_chars(b"\xff\xfeab", 10, false).chars, 4);
        // A truncated '€' waits for the next byte, unless the stream has ended.
        assert_eq!(
            count_chars(b"a\xe2\x82", 10, true),
            CharCount { bytes: 1, chars: 1 }
        );
        assert_eq!(
            count_chars(b"a\xe2\x82", 10, false),
            CharCount { bytes: 3, chars: 3 }
        );
        // A lead byte followed by a non-continuation byte is invalid at once.
        assert_eq!(
            count_chars(b"\xe2a", 10, true),
            CharCount { bytes: 2, chars: 2 }
        );
        // Overlong and surrogate encodings are not characters.
        assert_eq!(count_chars(b"\xc0\xaf", 10, false).chars, 2);
        assert_eq!(count_chars(b"\xed\xa0\x80", 10, false).chars, 3);
    }

    #[test]
    fn characters_backward_agree_with_forward() {
        let samples: [&[u8]; 6] = [
            "aé€😀".as_bytes(),
            b"\xe2\x82\xac\x82",
            b"\xc3\xa9\xa9",
            b"\x82\xac",
            b"x\xf0\x9f\x98",
            b"\xed\xa0\x80z",
        ];
        for sample in samples {
            let mut backward = Vec::new();
            let mut end = sample.len();
            while end > 0 {
                let len = prev_char_len(&sample[..end]);
                backward.push(len);
                end -= len;
            }
            backward.reverse();
            let mut forward = Vec::new();
            let mut at = 0;
            while at < sample.len() {
                let len = next_char_len(&sample[at..], false).unwrap();
                forward.push(len);
                at += len;
            }
            assert_eq!(forward, backward, "{sample:?}");
        }
        assert_eq!(start_of_last_chars("aé€😀".as_bytes(), 2), 3);
        assert_eq!(start_of_last_chars(b"ab", 5), 0);
    }
}
