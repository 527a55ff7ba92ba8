//! Framing: where one msgpack value ends in bytes read from a connection.
//!
//! The forward protocol sends msgpack values back to back with nothing
//! between them. A [`Framer`] walks the bytes as they arrive, resuming where
//! it stopped (so a value arriving in many reads is walked once, not once per
//! read), and says when a whole value is there. A value longer than the
//! limit is refused as soon as its walked part passes the limit, before the
//! rest is read.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::scan::msgpack::{MsgpackError, Token, token};

/// Reads one whole value of at most `limit` bytes from `reader`, within
/// `wait`: the bytes of a handshake message. `buffer` keeps what was read
/// past it.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    limit: usize,
    wait: Duration,
) -> io::Result<BytesMut> {
    let mut framer = Framer::new(limit);
    let read = async {
        loop {
            match framer.frame(buffer) {
                Ok(Some(len)) => return Ok(buffer.split_to(len)),
                Ok(None) => {}
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "not a handshake message",
                    ));
                }
            }
            buffer.reserve(4096);
            if reader.read_buf(buffer).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed in the handshake",
                ));
            }
        }
    };
    tokio::time::timeout(wait, read).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer in the handshake",
        ))
    })
}

/// Why a value cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Not msgpack (a byte that is no marker).
    Invalid,
    /// The value is longer than the limit.
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Finds the end of the msgpack value at the start of a buffer that grows.
#[derive(Debug, Clone)]
pub(crate) struct Framer {
    /// The longest value accepted.
    limit: usize,
    /// Bytes of the value walked so far: every token before `at` is whole.
    at: usize,
    /// Values still to walk after `at` (1 for a new value).
    remaining: u64,
}

impl Framer {
    /// A framer for values of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Framer {
        Framer {
            limit,
            at: 0,
            remaining: 1,
        }
    }

    /// The length of the value at the start of `buffer`, once all of it is
    /// there (`None`: more bytes are needed). `buffer` must start with the
    /// bytes given to the previous calls since the last value was framed.
    /// After a value is framed, the next call starts a new one at the start
    /// of the buffer it is given.
    pub(crate) fn frame(&mut self, buffer: &[u8]) -> Result<Option<usize>, FrameError> {
        while self.remaining > 0 {
            let (token, end) = match token(buffer, self.at) {
                Ok(found) => found,
                Err(MsgpackError::InvalidMarker(_)) => return Err(FrameError::Invalid),
                Err(MsgpackError::Truncated) => {
                    // The header may say how long the token is: refuse a
                    // value that will be too long before reading it.
                    if buffer.len() > self.limit || self.claimed_end(buffer) > self.limit {
                        return Err(FrameError::TooLong { limit: self.limit });
                    }
                    return Ok(None);
                }
            };
            if end > self.limit {
                return Err(FrameError::TooLong { limit: self.limit });
            }
            self.remaining -= 1;
            if let Token::Container(n) = token {
                self.remaining += n;
                // Every value takes a byte at least.
                if self.remaining > (self.limit - end) as u64 {
                    return Err(FrameError::TooLong { limit: self.limit });
                }
            }
            self.at = end;
        }
        let len = self.at;
        *self = Framer::new(self.limit);
        Ok(Some(len))
    }

    /// Where the token at `at` would end, as far as its header says (0 when
    /// the header itself is not all there).
    fn claimed_end(&self, buffer: &[u8]) -> usize {
        let header = &buffer[self.at.min(buffer.len())..];
        let Some((&marker, rest)) = header.split_first() else {
            return 0;
        };
        let length = |bytes: usize| {
            rest.get(..bytes)
                .map(|field| field.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)))
        };
        let claimed = match marker {
            0xc4 | 0xd9 => length(1).map(|n| 2 + n),
            0xc5 | 0xda => length(2).map(|n| 3 + n),
            0xc6 | 0xdb => length(4).map(|n| 5 + n),
            0xc7 => length(1).map(|n| 3 + n),
            0xc8 => length(2).map(|n| 4 + n),
            0xc9 => length(4).map(|n| 6 + n),
            _ => None,
        };
        claimed.map_or(0, |n| self.at.saturating_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixstr(text: &str) -> Vec<u8> {
        let mut out = vec![0xa0 | text.len() as u8];
        out.extend_from_slice(text.as_bytes());
        out
    }

    #[test]
    fn frames_a_value_arriving_a_byte_at_a_time() {
        // ["tag", [1, {"k": "v"}]] then the start of the next value.
        let mut value = vec![0x92];
        value.extend(fixstr("tag"));
        value.extend([0x92, 0x01, 0x81]);
        value.extend(fixstr("k"));
        value.extend(fixstr("v"));
        let mut stream = value.clone();
        stream.push(0x93);
        let mut framer = Framer::new(1024);
        for end in 0..value.len() {
            assert_eq!(framer.frame(&stream[..end]), Ok(None), "at {end}");
        }
        assert_eq!(framer.frame(&stream), Ok(Some(value.len())));
        // A new value starts.
        assert_eq!(framer.frame(&stream[value.len()..]), Ok(None));
    }

    #[test]
    fn refuses_what_is_not_msgpack_or_too_long() {
        assert_eq!(
            Framer::new(64).frame(&[0x92, 0xc1]),
            Err(FrameError::Invalid)
        );
        // A bin32 header announcing 1 MiB, with a limit of 64 KiB: refused
        // from its header alone.
        assert_eq!(
            Framer::new(65536).frame(&[0x91, 0xc6, 0x00, 0x10, 0x00, 0x00]),
            Err(FrameError::TooLong { limit: 65536 })
        );
        // An array32 announcing more elements than the limit has bytes.
        assert_eq!(
            Framer::new(1024).frame(&[0xdd, 0x00, 0x01, 0x00, 0x00]),
            Err(FrameError::TooLong { limit: 1024 })
        );
        // Many small values adding up past the limit.
        let mut long = vec![0xdc, 0x01, 0x00];
        long.extend([0x01; 256]);
        assert_eq!(
            Framer::new(100).frame(&long),
            Err(FrameError::TooLong { limit: 100 })
        );
    }
}
