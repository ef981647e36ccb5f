//! Browser sessions of the web UI. Signing in with a bearer token (read scope
//! or higher) opens a session: a random secret in an `HttpOnly` cookie, of
//! which the index keeps only the SHA-256, with the token it acts as and a
//! CSRF token for the session's forms. Every request looks the session up in
//! the index (no cache), so every server behind a load balancer honours it,
//! and signing out or revoking the token ends it at once.
//!
//! `asset-catalog-server ui-link` stores a one-time sign-in link the same way
//! (kind `link`): redeeming it opens an admin session that acts as no token.

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Caller, Catalog, ServiceError};
use crate::auth::{Presented, Scope, Scopes};
use crate::index::{Index, IndexError, NewSession, SessionKind};

/// Random bytes of a session or link secret.
const SECRET_BYTES: usize = 32;
/// Random bytes of a CSRF token.
const CSRF_BYTES: usize = 16;

/// A live session, as the HTTP gate found it.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub caller: Caller,
    /// Expected in every form the session posts.
    pub csrf: String,
    pub id_hash: [u8; 32],
    pub expires: OffsetDateTime,
}

/// A session just opened: the cookie's value (shown to the browser once).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub secret: String,
    pub expires: OffsetDateTime,
}

/// SHA-256 of a session or link secret, as the index keys it; `None` when
/// the text is not shaped like a secret this server issues.
pub fn secret_hash(secret: &str) -> Option<[u8; 32]> {
    let shaped = secret.len() == SECRET_BYTES * 2 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    shaped.then(|| Sha256::digest(secret.as_bytes()).into())
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Catalog {
    /// Open a session for a bearer token's text.
    pub async fn sign_in(
        &self,
        token_text: &str,
        lifetime: Duration,
    ) -> Result<SignedIn, ServiceError> {
        let unauthorized = |m: &str| ServiceError::Unauthorized(m.into());
        let presented = Presented::parse(token_text.trim()).ok_or_else(|| {
            unauthorized("that is not a token; paste the whole acat_… text `asset-catalog-server token create` printed")
        })?;
        let grant = self.verify_token(&presented).await?;
        if !grant.scopes.allows(Scope::Read) {
            return Err(ServiceError::Forbidden(format!(
                "token {} ({}) cannot read the catalog; sign in with a token that has the read or admin scope",
                grant.id, grant.scopes
            )));
        }
        let kind = SessionKind::Session;
        Ok(open_session(self.index(), Some(grant.id), grant.scopes, lifetime, kind).await?)
    }

    /// The live session a cookie names, if any.
    pub async fn ui_session(&self, secret: &str) -> Result<Option<UiSession>, ServiceError> {
        let Some(id_hash) = secret_hash(secret) else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        let Some(grant) = self.index().session(&id_hash, now).await? else {
            return Ok(None);
        };
        let caller = match grant.token {
            Some(token) => Caller::from_grant(token),
            None => Caller::session(grant.scopes),
        };
        Ok(Some(UiSession {
            caller,
            csrf: grant.csrf,
            id_hash,
            expires: grant.expires,
        }))
    }

    /// End a session (sign out).
    pub async fn sign_out(&self, session: &UiSession) -> Result<(), ServiceError> {
        self.index().end_session(&session.id_hash).await?;
        Ok(())
    }

    /// Redeem a sign-in link (once): a session with its scopes, or `None`
    /// when the link is unknown, used or expired.
    pub async fn redeem_sign_in_link(
        &self,
        secret: &str,
        lifetime: Duration,
    ) -> Result<Option<SignedIn>, ServiceError> {
        let Some(id_hash) = secret_hash(secret) else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        match self.index().redeem_link(&id_hash, now).await? {
            Some(scopes) => {
                let kind = SessionKind::Session;
                Ok(Some(
                    open_session(self.index(), None, scopes, lifetime, kind).await?,
                ))
            }
            None => Ok(None),
        }
    }
}

/// Store a session or link; returns its secret.
async fn open_session(
    index: &Index,
    token_id: Option<String>,
    scopes: Scopes,
    lifetime: Duration,
    kind: SessionKind,
) -> Result<SignedIn, IndexError> {
    let secret = random_hex(SECRET_BYTES);
    let now = OffsetDateTime::now_utc();
    let expires = now + lifetime;
    let new = NewSession {
        id_hash: Sha256::digest(secret.as_bytes()).into(),
        token_id,
        scopes,
        csrf: random_hex(CSRF_BYTES),
        created: now,
        expires,
        kind,
    };
    index.create_session(&new).await?;
    Ok(SignedIn { secret, expires })
}

/// Store a one-time admin sign-in link (`asset-catalog-server ui-link`);
/// returns its secret.
pub async fn store_sign_in_link(index: &Index, lifetime: Duration) -> Result<String, IndexError> {
    let scopes = Scopes::new(vec![Scope::Admin]);
    let link = open_session(index, None, scopes, lifetime, SessionKind::Link).await?;
    Ok(link.secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_issued_shapes_are_hashed() {
        let secret = random_hex(SECRET_BYTES);
        assert!(secret_hash(&secret).is_some());
        assert!(secret_hash("short").is_none());
        assert!(secret_hash(&"z".repeat(64)).is_none());
        assert_ne!(secret_hash(&secret), secret_hash(&random_hex(SECRET_BYTES)));
    }
}
