//! Sessions, sign-in links and the overview on PostgreSQL, shared by every
//! server: a session made through one server is known to all, and a link's
//! `DELETE … RETURNING` takes its row lock, so of two servers redeeming it
//! at once the second finds the row gone. The overview reads the `days`
//! and `clients` summary tables (schema version 3), summing their shards.

use time::OffsetDateTime;
use tokio_postgres::IsolationLevel;

use super::{PgFail, PgIndex};
use crate::auth::Scopes;
use crate::index::IndexError;
use crate::index::sessions::{
    ClientSummary, DayCount, NewSession, Overview, SessionGrant, SessionKind, day_date, day_range,
};
use crate::index::types::{TokenGrant, TokenLimits, from_nanos, to_nanos};

impl PgIndex {
    /// Store a session or link, deleting the rows expired by `new.created`.
    pub async fn create_session(&self, new: &NewSession) -> Result<(), IndexError> {
        let mut client = self.client().await?;
        let created = to_nanos(new.created);
        let run = async {
            let tx = client.transaction().await?;
            tx.execute("DELETE FROM sessions WHERE expires <= $1", &[&created])
                .await?;
            tx.execute(
                "INSERT INTO sessions (id_hash, kind, token_id, scopes, csrf, created, expires) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &new.id_hash.as_slice(),
                    &new.kind.as_str(),
                    &new.token_id,
                    &new.scopes.to_db(),
                    &new.csrf,
                    &created,
                    &to_nanos(new.expires),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok::<_, PgFail>(())
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// The live session with this hash, with its token's grant.
    pub async fn session(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<SessionGrant>, IndexError> {
        let client = self.client().await?;
        let run = async {
            let stmt = client
                .prepare_cached(
                    "SELECT s.scopes, s.csrf, s.expires, s.token_id, \
                            t.scopes, t.client, t.max_bytes, t.rate_per_min \
                     FROM sessions s LEFT JOIN tokens t ON t.id = s.token_id \
                     WHERE s.id_hash = $1 AND s.kind = $2 AND s.expires > $3 \
                       AND (s.token_id IS NULL OR (t.id IS NOT NULL AND t.revoked IS NULL))",
                )
                .await?;
            let kind = SessionKind::Session.as_str();
            Ok::<_, PgFail>(
                client
                    .query_opt(&stmt, &[&id_hash.as_slice(), &kind, &to_nanos(now)])
                    .await?,
            )
        };
        let Some(r) = run.await.map_err(|e| self.fail(e))? else {
            return Ok(None);
        };
        let token = r.get::<_, Option<String>>(3).map(|id| TokenGrant {
            id,
            scopes: Scopes::from_db(r.get(4)),
            limits: TokenLimits {
                client: r.get(5),
                max_bytes: r
                    .get::<_, Option<i64>>(6)
                    .and_then(|n| u64::try_from(n).ok()),
                rate_per_min: r
                    .get::<_, Option<i64>>(7)
                    .and_then(|n| u32::try_from(n).ok()),
            },
        });
        let scopes = match &token {
            Some(grant) => grant.scopes.clone(),
            None => Scopes::from_db(r.get(0)),
        };
        Ok(Some(SessionGrant {
            token,
            scopes,
            csrf: r.get(1),
            expires: from_nanos(r.get(2)),
        }))
    }

    /// Delete the session row; `false` when there was none.
    pub async fn end_session(&self, id_hash: &[u8; 32]) -> Result<bool, IndexError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM sessions WHERE id_hash = $1 AND kind = $2",
                &[&id_hash.as_slice(), &SessionKind::Session.as_str()],
            )
            .await
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }

    /// Delete the link row; its scopes when it had not expired by `now`.
    pub async fn redeem_link(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<Scopes>, IndexError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM sessions WHERE id_hash = $1 AND kind = $2 RETURNING scopes, expires",
                &[&id_hash.as_slice(), &SessionKind::Link.as_str()],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok(row
            .filter(|r| r.get::<_, i64>(1) > to_nanos(now))
            .map(|r| Scopes::from_db(r.get(0))))
    }

    /// The overview figures, from one REPEATABLE READ snapshot.
    pub async fn overview(&self, now: OffsetDateTime, days: u32) -> Result<Overview, IndexError> {
        let (from, to) = day_range(now, days);
        let mut client = self.client().await?;
        let run = async {
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let totals = tx
                .query_one(
                    "SELECT coalesce(sum(assets), 0)::bigint, coalesce(sum(bytes), 0)::bigint, \
                     (SELECT count(*) FROM assets WHERE integrity IN ('corrupt', 'missing')) \
                     FROM days",
                    &[],
                )
                .await?;
            let per_day = tx
                .query(
                    "SELECT day, sum(assets)::bigint, sum(bytes)::bigint FROM days \
                     WHERE day BETWEEN $1 AND $2 GROUP BY day HAVING sum(assets) > 0 ORDER BY day",
                    &[&from, &to],
                )
                .await?;
            let clients = tx
                .query(
                    "SELECT client, sum(sightings)::bigint, max(last_seen) FROM clients \
                     GROUP BY client ORDER BY max(last_seen) DESC, client",
                    &[],
                )
                .await?;
            tx.commit().await?;
            Ok::<_, PgFail>(Overview {
                assets: count(totals.get(0)),
                bytes: count(totals.get(1)),
                problems: count(totals.get(2)),
                per_day: per_day
                    .iter()
                    .filter_map(|r| {
                        Some(DayCount {
                            day: day_date(r.get(0))?,
                            assets: count(r.get(1)),
                            bytes: count(r.get(2)),
                        })
                    })
                    .collect(),
                clients: clients
                    .iter()
                    .map(|r| ClientSummary {
                        client: r.get(0),
                        sightings: count(r.get(1)),
                        last_seen: from_nanos(r.get(2)),
                    })
                    .collect(),
            })
        };
        run.await.map_err(|e| self.fail(e))
    }
}

/// A stored count as a figure (never below 0).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
