//! Bearer tokens: scopes, the token format and its hashing. No actix types
//! and no SQL here; the index stores the rows, `http::auth` enforces them.
//!
//! A token is `acat_<id>_<secret>`: `id` (12 hex chars) names the row, the
//! secret is 32 random bytes in hex. Only SHA-256 of the secret is stored — a
//! fast hash is right for 256-bit random secrets (nothing to brute-force) —
//! and it is compared in constant time. The secret is shown once, at creation.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "acat_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// What a token may do. `Admin` implies the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Upload content, check hashes, record sightings.
    Upload,
    /// List, read metadata and content.
    Read,
    /// Delete, and everything the other scopes allow.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Upload, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}; use upload, read or admin"))
    }
}

/// The scopes one token holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Self {
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Does this set allow what `needed` guards? `admin` allows everything.
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.contains(&needed) || self.0.contains(&Scope::Admin)
    }

    /// Stored form: `upload,read`.
    pub fn to_db(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parse the stored form; unknown words are dropped (a newer server's scope).
    pub fn from_db(s: &str) -> Self {
        Self::new(s.split(',').filter_map(|w| w.parse().ok()).collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_db())
    }
}

/// A freshly generated token: the full secret text (shown once) and what is stored.
pub struct NewToken {
    pub id: String,
    pub secret_hash: [u8; 32],
    /// `acat_<id>_<secret>`; never log it.
    pub text: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("text", &"<redacted>")
            .finish()
    }
}

impl NewToken {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let id = hex::encode(id);
        let secret = hex::encode(secret);
        Self {
            secret_hash: hash_secret(&secret),
            text: format!("{TOKEN_PREFIX}{id}_{secret}"),
            id,
        }
    }
}

/// A presented token split into its row id and secret.
pub struct Presented<'a> {
    pub id: &'a str,
    secret: &'a str,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented").field("id", &self.id).finish()
    }
}

impl<'a> Presented<'a> {
    /// Split `acat_<id>_<secret>`; `None` when it is not shaped like a token.
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(TOKEN_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let hex_len = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex_len(id, ID_BYTES * 2) && hex_len(secret, SECRET_BYTES * 2))
            .then_some(Self { id, secret })
    }

    /// Constant-time comparison of the secret's hash with the stored one.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        bool::from(hash_secret(self.secret).as_slice().ct_eq(stored_hash))
    }
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match_only_their_hash() {
        let a = NewToken::generate();
        let b = NewToken::generate();
        assert_ne!(a.text, b.text);
        let p = Presented::parse(&a.text).expect("parses");
        assert_eq!(p.id, a.id);
        assert!(p.matches(&a.secret_hash));
        assert!(!p.matches(&b.secret_hash));
        assert!(!format!("{a:?}{p:?}").contains(&a.text[18..]));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "acat_",
            "acat_zz_zz",
            "Bearer x",
            "acat_0123456789ab_short",
        ] {
            assert!(Presented::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn admin_implies_everything() {
        let admin = Scopes::new(vec![Scope::Admin]);
        let upload = Scopes::from_db("upload,bogus");
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        assert!(upload.allows(Scope::Upload));
        assert!(!upload.allows(Scope::Read) && !upload.allows(Scope::Admin));
        assert_eq!(
            Scopes::new(vec![Scope::Read, Scope::Upload]).to_db(),
            "upload,read"
        );
    }
}
