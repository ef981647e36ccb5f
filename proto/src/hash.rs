//! `Sha256Hex`: a validated, lower-case, 64-character hex SHA-256 digest.
//! Parsing accepts upper-case input and normalises it; everything else is an
//! error, so a value of this type is always safe to use as an object key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 digest as 64 lower-case hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Hex(String);

/// Why a string is not a SHA-256 hex digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSha256Error {
    #[error("a SHA-256 digest is 64 hex characters, got {0}")]
    Length(usize),
    #[error("a SHA-256 digest contains only 0-9 and a-f, found {0:?}")]
    NotHex(char),
}

impl Sha256Hex {
    /// Build from a raw 32-byte digest.
    pub fn from_digest(bytes: [u8; 32]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in bytes {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 0x0f)] as char);
        }
        Self(s)
    }

    /// The lower-case hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consume into the hex string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for Sha256Hex {
    type Err = ParseSha256Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(ParseSha256Error::Length(s.chars().count()));
        }
        if let Some(bad) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ParseSha256Error::NotHex(bad));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({})", self.0)
    }
}

impl AsRef<str> for Sha256Hex {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Sha256Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_normalises_case() {
        let h: Sha256Hex = EMPTY.to_uppercase().parse().expect("valid");
        assert_eq!(h.as_str(), EMPTY);
    }

    #[test]
    fn rejects_bad_length_and_chars() {
        assert_eq!("abc".parse::<Sha256Hex>(), Err(ParseSha256Error::Length(3)));
        let bad = format!("{}g", &EMPTY[..63]);
        assert_eq!(bad.parse::<Sha256Hex>(), Err(ParseSha256Error::NotHex('g')));
        let traversal = format!("../{}", &EMPTY[..61]);
        assert!(traversal.parse::<Sha256Hex>().is_err());
    }

    #[test]
    fn from_digest_round_trips() {
        let h = Sha256Hex::from_digest([0xab; 32]);
        assert_eq!(h.as_str(), "ab".repeat(32));
        let json = serde_json::to_string(&h).expect("serialize");
        let back: Sha256Hex = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, h);
        assert!(serde_json::from_str::<Sha256Hex>("\"nothex\"").is_err());
    }
}
