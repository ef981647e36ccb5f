//! The `tokens` table, shared by every server: a token made with `token
//! create` against this database works everywhere, and since each request
//! reads its row (no cache), a revocation applies on every server at the
//! next request.

use time::OffsetDateTime;

use super::PgIndex;
use crate::auth::{NewToken, Presented, Scopes};
use crate::index::IndexError;
use crate::index::types::{
    TokenGrant, TokenLimits, TokenRow, TokenVerdict, from_nanos, to_i64, to_nanos,
};

impl PgIndex {
    /// Store a new token's hash; returns the token (its text is shown once).
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &Scopes,
        limits: &TokenLimits,
    ) -> Result<NewToken, IndexError> {
        let token = NewToken::generate();
        let client = self.client().await?;
        let now = to_nanos(OffsetDateTime::now_utc());
        client
            .execute(
                "INSERT INTO tokens (id, name, scopes, secret_hash, created, client, max_bytes, rate_per_min) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &token.id,
                    &name,
                    &scopes.to_db(),
                    &token.secret_hash.as_slice(),
                    &now,
                    &limits.client,
                    &limits.max_bytes.map(to_i64),
                    &limits.rate_per_min.map(i64::from),
                ],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok(token)
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, IndexError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, name, scopes, created, last_used, revoked, stored_bytes, \
                 client, max_bytes, rate_per_min FROM tokens ORDER BY created, id",
                &[],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .iter()
            .map(|r| TokenRow {
                id: r.get(0),
                name: r.get(1),
                scopes: Scopes::from_db(r.get(2)),
                created: from_nanos(r.get(3)),
                last_used: r.get::<_, Option<i64>>(4).map(from_nanos),
                revoked: r.get::<_, Option<i64>>(5).map(from_nanos),
                stored_bytes: u64::try_from(r.get::<_, i64>(6)).unwrap_or_default(),
                limits: limits_from(r, 7),
            })
            .collect())
    }

    /// Revoke by id, deleting its web sessions in the same statement;
    /// `false` when no such (unrevoked) token exists.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, IndexError> {
        let client = self.client().await?;
        let now = to_nanos(OffsetDateTime::now_utc());
        client
            .query_one(
                "WITH revoked AS (UPDATE tokens SET revoked = $2 WHERE id = $1 AND revoked IS NULL \
                                  RETURNING id), \
                      ended AS (DELETE FROM sessions WHERE token_id = $1) \
                 SELECT count(*) FROM revoked",
                &[&id, &now],
            )
            .await
            .map(|row| row.get::<_, i64>(0) > 0)
            .map_err(|e| self.fail(e))
    }

    /// Check a presented token against its row.
    pub async fn verify_token(
        &self,
        presented: &Presented<'_>,
    ) -> Result<TokenVerdict, IndexError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT secret_hash, scopes, revoked, client, max_bytes, rate_per_min \
                 FROM tokens WHERE id = $1",
            )
            .await
            .map_err(|e| self.fail(e))?;
        let row = client
            .query_opt(&stmt, &[&presented.id])
            .await
            .map_err(|e| self.fail(e))?;
        let Some(row) = row else {
            return Ok(TokenVerdict::Unknown);
        };
        let hash: Vec<u8> = row.get(0);
        if !presented.matches(&hash) {
            return Ok(TokenVerdict::Unknown);
        }
        if row.get::<_, Option<i64>>(2).is_some() {
            return Ok(TokenVerdict::Revoked);
        }
        Ok(TokenVerdict::Valid(TokenGrant {
            id: presented.id.to_owned(),
            scopes: Scopes::from_db(row.get(1)),
            limits: limits_from(&row, 3),
        }))
    }

    /// Bytes of content `id` stored first.
    pub async fn token_stored_bytes(&self, id: &str) -> Result<u64, IndexError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT stored_bytes FROM tokens WHERE id = $1", &[&id])
            .await
            .map_err(|e| self.fail(e))?;
        Ok(row
            .and_then(|r| u64::try_from(r.get::<_, i64>(0)).ok())
            .unwrap_or_default())
    }

    /// Record that a token was used (callers rate-limit this).
    pub async fn touch_token(&self, id: &str) -> Result<(), IndexError> {
        let client = self.client().await?;
        let now = to_nanos(OffsetDateTime::now_utc());
        client
            .execute(
                "UPDATE tokens SET last_used = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await
            .map(drop)
            .map_err(|e| self.fail(e))
    }
}

/// `client, max_bytes, rate_per_min` starting at column `at`.
fn limits_from(r: &tokio_postgres::Row, at: usize) -> TokenLimits {
    TokenLimits {
        client: r.get(at),
        max_bytes: r
            .get::<_, Option<i64>>(at + 1)
            .and_then(|n| u64::try_from(n).ok()),
        rate_per_min: r
            .get::<_, Option<i64>>(at + 2)
            .and_then(|n| u32::try_from(n).ok()),
    }
}
