//! Keyed fingerprints of secrets.
//!
//! A fingerprint lets the same token be recognised wherever it appears (token
//! sprawl) without anyone storing the token: it is the first 8 bytes of a keyed
//! BLAKE3 hash of the matched bytes, written as 16 hex digits. Without the key a
//! fingerprint cannot be tested against a guessed token, which is why the key
//! is treated as a secret and never printed.

use std::fmt;
use std::str::FromStr;

/// Context string for deriving the 32-byte hashing key from key material of any
/// length (a key file or an environment variable).
const KEY_CONTEXT: &str = "logredact 2026-11 fingerprint key v1";

/// The secret key behind every fingerprint of a process.
///
/// Two processes give the same fingerprint for the same secret only if they use
/// the same key material.
#[derive(Clone)]
pub struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    /// Derives a key from key material such as the contents of a key file.
    ///
    /// ```
    /// use logredact::FingerprintKey;
    /// let a = FingerprintKey::derive(b"shared key material");
    /// let b = FingerprintKey::derive(b"shared key material");
    /// assert_eq!(a.fingerprint(b"secret"), b.fingerprint(b"secret"));
    /// ```
    pub fn derive(material: &[u8]) -> FingerprintKey {
        FingerprintKey(blake3::derive_key(KEY_CONTEXT, material))
    }

    /// A fresh random key; fingerprints made with it are only comparable within
    /// this process.
    pub fn random() -> Result<FingerprintKey, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(FingerprintKey(key))
    }

    /// The fingerprint of `secret` under this key.
    pub fn fingerprint(&self, secret: &[u8]) -> Fingerprint {
        let hash = blake3::keyed_hash(&self.0, secret);
        let mut short = [0u8; 8];
        short.copy_from_slice(&hash.as_bytes()[..8]);
        Fingerprint(short)
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(<secret>)")
    }
}

/// A keyed hash of one secret, shown as 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    /// The 16 hex digits as bytes, for writing into a mask without allocating.
    pub fn to_hex(self) -> [u8; 16] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        out
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        // The digits are ASCII by construction.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The text was not 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 16 hex digits")]
pub struct ParseFingerprintError;

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(text: &str) -> Result<Fingerprint, ParseFingerprintError> {
        let digits = text.as_bytes();
        if digits.len() != 16 {
            return Err(ParseFingerprintError);
        }
        let mut out = [0u8; 8];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let high = hex_value(pair[0]).ok_or(ParseFingerprintError)?;
            let low = hex_value(pair[1]).ok_or(ParseFingerprintError)?;
            out[i] = high << 4 | low;
        }
        Ok(Fingerprint(out))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_fingerprint_other_key_other_fingerprint() {
        let a = FingerprintKey::derive(b"k1");
        let b = FingerprintKey::derive(b"k2");
        assert_eq!(a.fingerprint(b"x"), a.fingerprint(b"x"));
        assert_ne!(a.fingerprint(b"x"), b.fingerprint(b"x"));
        assert_ne!(a.fingerprint(b"x"), a.fingerprint(b"y"));
    }

    #[test]
    fn display_parses_back() {
        let fp = FingerprintKey::derive(b"k").fingerprint(b"secret");
        let text = fp.to_string();
        assert_eq!(text.len(), 16);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        assert_eq!("12".parse::<Fingerprint>(), Err(ParseFingerprintError));
        assert_eq!(
            "zz00000000000000".parse::<Fingerprint>(),
            Err(ParseFingerprintError)
        );
    }

    #[test]
    fn key_debug_hides_the_key() {
        let key = FingerprintKey::derive(b"material");
        assert_eq!(format!("{key:?}"), "FingerprintKey(<secret>)");
    }
}
