//! The `tokens` table: create, list, revoke, and verify a presented token.
//! Verification reads the row on every request (no cache), so a revocation
//! by `asset-catalog-server token revoke` — another process writing the same
//! WAL database — takes effect on the very next request.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::SqliteIndex;
use crate::auth::{NewToken, Presented, Scopes};
use crate::index::IndexError;
use crate::index::types::{
    TokenGrant, TokenLimits, TokenRow, TokenVerdict, from_nanos, to_i64, to_nanos,
};

impl SqliteIndex {
    /// Store a new token's hash; returns the token (its text is shown once).
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &Scopes,
        limits: &TokenLimits,
    ) -> Result<NewToken, IndexError> {
        let token = NewToken::generate();
        let (id, hash) = (token.id.clone(), token.secret_hash);
        let (name, scopes, limits) = (name.to_owned(), scopes.to_db(), limits.clone());
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tokens (id, name, scopes, secret_hash, created, client, max_bytes, rate_per_min) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    name,
                    scopes,
                    hash.as_slice(),
                    now,
                    limits.client,
                    limits.max_bytes.map(to_i64),
                    limits.rate_per_min
                ],
            )
        })
        .await?;
        Ok(token)
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, IndexError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, name, scopes, created, last_used, revoked, stored_bytes, \
                 client, max_bytes, rate_per_min FROM tokens ORDER BY created, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    scopes: Scopes::from_db(&r.get::<_, String>(2)?),
                    created: from_nanos(r.get(3)?),
                    last_used: r.get::<_, Option<i64>>(4)?.map(from_nanos),
                    revoked: r.get::<_, Option<i64>>(5)?.map(from_nanos),
                    stored_bytes: u64::try_from(r.get::<_, i64>(6)?).unwrap_or_default(),
                    limits: limits_from(r, 7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Revoke by id, deleting its web sessions in the same transaction;
    /// `false` when no such (unrevoked) token exists.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, IndexError> {
        let id = id.to_owned();
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let revoked = tx.execute(
                "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
                params![id, now],
            )? > 0;
            tx.execute("DELETE FROM sessions WHERE token_id = ?1", [&id])?;
            tx.commit()?;
            Ok(revoked)
        })
        .await
    }

    /// Check a presented token against its row.
    pub async fn verify_token(
        &self,
        presented: &Presented<'_>,
    ) -> Result<TokenVerdict, IndexError> {
        let id = presented.id.to_owned();
        let row = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT secret_hash, scopes, revoked, client, max_bytes, rate_per_min \
                     FROM tokens WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        limits_from(r, 3)?,
                    ))
                })
                .optional()
            })
            .await?;
        Ok(match row {
            Some((hash, ..)) if !presented.matches(&hash) => TokenVerdict::Unknown,
            Some((_, _, Some(_), _)) => TokenVerdict::Revoked,
            Some((_, scopes, None, limits)) => TokenVerdict::Valid(TokenGrant {
                id: presented.id.to_owned(),
                scopes: Scopes::from_db(&scopes),
                limits,
            }),
            None => TokenVerdict::Unknown,
        })
    }

    /// Bytes of content `id` stored first.
    pub async fn token_stored_bytes(&self, id: &str) -> Result<u64, IndexError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT stored_bytes FROM tokens WHERE id = ?1")?
                .query_row([id], |r| r.get::<_, i64>(0))
                .optional()
        })
        .await
        .map(|n| n.and_then(|n| u64::try_from(n).ok()).unwrap_or_default())
    }

    /// Record that a token was used (callers rate-limit this).
    pub async fn touch_token(&self, id: &str) -> Result<(), IndexError> {
        let id = id.to_owned();
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write(move |conn| {
            conn.execute(
                "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map(drop)
        })
        .await
    }
}

/// `client, max_bytes, rate_per_min` starting at column `at`.
fn limits_from(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<TokenLimits> {
    Ok(TokenLimits {
        client: r.get(at)?,
        max_bytes: r
            .get::<_, Option<i64>>(at + 1)?
            .and_then(|n| u64::try_from(n).ok()),
        rate_per_min: r
            .get::<_, Option<i64>>(at + 2)?
            .and_then(|n| u32::try_from(n).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    #[tokio::test]
    async fn create_verify_revoke() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = SqliteIndex::open(&dir.path().join("i.sqlite3"))
            .await
            .expect("open");
        let scopes = Scopes::new(vec![Scope::Upload]);
        let limits = TokenLimits {
            client: Some("laptop".into()),
            max_bytes: Some(1 << 30),
            rate_per_min: Some(60),
        };
        let token = index
            .create_token("ci", &scopes, &limits)
            .await
            .expect("create");
        let presented = Presented::parse(&token.text).expect("parse");
        let verdict = index.verify_token(&presented).await.expect("verify");
        assert_eq!(
            verdict,
            TokenVerdict::Valid(TokenGrant {
                id: token.id.clone(),
                scopes,
                limits: limits.clone(),
            })
        );
        index.touch_token(&token.id).await.expect("touch");
        let other = NewToken::generate();
        let forged = format!("acat_{}_{}", token.id, &other.text[18..]);
        let forged = Presented::parse(&forged).expect("parse");
        assert_eq!(
            index.verify_token(&forged).await.expect("v"),
            TokenVerdict::Unknown
        );
        assert!(index.revoke_token(&token.id).await.expect("revoke"));
        assert!(!index.revoke_token(&token.id).await.expect("revoke twice"));
        assert_eq!(
            index.verify_token(&presented).await.expect("v"),
            TokenVerdict::Revoked
        );
        let rows = index.list_tokens().await.expect("list");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].last_used.is_some() && rows[0].revoked.is_some());
        assert_eq!((rows[0].limits.clone(), rows[0].stored_bytes), (limits, 0));
    }
}
