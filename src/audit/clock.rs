//! When each part of a stream arrived, so that an audit record carries the
//! time its match passed through rather than the time its after-context
//! completed (which, on a quiet stream, can be much later).

use std::collections::VecDeque;
use std::time::SystemTime;

/// Arrival times of a stream's recent chunks.
///
/// Invariant: entries are `(end offset, arrival time)` in stream order, and
/// cover every offset from the oldest detection that may still be reported.
pub struct ArrivalClock {
    chunks: VecDeque<(u64, SystemTime)>,
    /// Entries ending this many bytes before the newest are no longer needed:
    /// no pending detection starts that far back.
    keep_bytes: u64,
}

impl ArrivalClock {
    /// A clock that remembers at least the last `keep_bytes` bytes' arrival.
    pub fn new(keep_bytes: u64) -> ArrivalClock {
        ArrivalClock {
            chunks: VecDeque::new(),
            keep_bytes,
        }
    }

    /// Remembers at least the last `keep_bytes` bytes' arrival from now on
    /// (a stream whose rules were reloaded keeps what either set needs).
    pub fn keep_at_least(&mut self, keep_bytes: u64) {
        self.keep_bytes = self.keep_bytes.max(keep_bytes);
    }

    /// Records that the stream's bytes up to `end` had arrived by `at`.
    pub fn arrived(&mut self, end: u64, at: SystemTime) {
        self.chunks.push_back((end, at));
        while self.chunks.len() > 1 && self.chunks[0].0 + self.keep_bytes <= end {
            self.chunks.pop_front();
        }
    }

    /// When the byte at `offset` arrived (the newest time if unknown).
    pub fn time_of(&self, offset: u64) -> SystemTime {
        self.chunks
            .iter()
            .find(|(end, _)| offset < *end)
            .or(self.chunks.back())
            .map_or_else(SystemTime::now, |(_, at)| *at)
    }
}

/// `at` as RFC 3339 UTC with milliseconds: `2026-11-22T14:03:07.123Z`.
pub fn rfc3339_millis(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn finds_the_chunk_of_an_offset() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut clock = ArrivalClock::new(100);
        clock.arrived(10, t0);
        clock.arrived(20, t0 + Duration::from_secs(1));
        assert_eq!(clock.time_of(5), t0);
        assert_eq!(clock.time_of(10), t0 + Duration::from_secs(1));
        assert_eq!(clock.time_of(99), t0 + Duration::from_secs(1));
        clock.arrived(500, t0 + Duration::from_secs(2));
        assert_eq!(clock.chunks.len(), 1, "old chunks are forgotten");
        assert_eq!(rfc3339_millis(t0), "2023-11-14T22:13:20.000Z");
    }
}
