//! Sessions, sign-in links and the overview on SQLite. Writes join the
//! group commit (`group.rs`), each in a savepoint of its own; one process
//! owns the file, so the writer connection serialises them, and a link's
//! `DELETE … RETURNING` hands its row to exactly one caller. The overview
//! reads the `days` and `clients` summary tables (schema version 6), never
//! `assets` or `sightings` as a whole.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::SqliteIndex;
use crate::auth::Scopes;
use crate::index::IndexError;
use crate::index::sessions::{
    ClientSummary, DayCount, NewSession, Overview, SessionGrant, SessionKind, day_date, day_range,
};
use crate::index::types::{TokenGrant, TokenLimits, from_nanos, to_nanos};

impl SqliteIndex {
    /// Store a session or link, deleting the rows expired by `new.created`.
    pub async fn create_session(&self, new: &NewSession) -> Result<(), IndexError> {
        let new = new.clone();
        self.write_grouped(move |conn| {
            let created = to_nanos(new.created);
            conn.prepare_cached("DELETE FROM sessions WHERE expires <= ?")?
                .execute([created])?;
            conn.prepare_cached(
                "INSERT INTO sessions (id_hash, kind, token_id, scopes, csrf, created, expires) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                new.id_hash.as_slice(),
                new.kind.as_str(),
                new.token_id,
                new.scopes.to_db(),
                new.csrf,
                created,
                to_nanos(new.expires)
            ])
            .map(drop)
        })
        .await
    }

    /// The live session with this hash, with its token's grant.
    pub async fn session(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<SessionGrant>, IndexError> {
        let (hash, now) = (*id_hash, to_nanos(now));
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT s.scopes, s.csrf, s.expires, s.token_id, \
                        t.scopes, t.client, t.max_bytes, t.rate_per_min \
                 FROM sessions s LEFT JOIN tokens t ON t.id = s.token_id \
                 WHERE s.id_hash = ?1 AND s.kind = ?2 AND s.expires > ?3 \
                   AND (s.token_id IS NULL OR (t.id IS NOT NULL AND t.revoked IS NULL))",
            )?
            .query_row(
                params![hash.as_slice(), SessionKind::Session.as_str(), now],
                |r| {
                    let token = match r.get::<_, Option<String>>(3)? {
                        Some(id) => Some(TokenGrant {
                            id,
                            scopes: Scopes::from_db(&r.get::<_, String>(4)?),
                            limits: TokenLimits {
                                client: r.get(5)?,
                                max_bytes: r
                                    .get::<_, Option<i64>>(6)?
                                    .and_then(|n| u64::try_from(n).ok()),
                                rate_per_min: r
                                    .get::<_, Option<i64>>(7)?
                                    .and_then(|n| u32::try_from(n).ok()),
                            },
                        }),
                        None => None,
                    };
                    let scopes = match &token {
                        Some(grant) => grant.scopes.clone(),
                        None => Scopes::from_db(&r.get::<_, String>(0)?),
                    };
                    Ok(SessionGrant {
                        token,
                        scopes,
                        csrf: r.get(1)?,
                        expires: from_nanos(r.get(2)?),
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Delete the session row; `false` when there was none.
    pub async fn end_session(&self, id_hash: &[u8; 32]) -> Result<bool, IndexError> {
        let hash = *id_hash;
        self.write_grouped(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1 AND kind = ?2")?
                .execute(params![hash.as_slice(), SessionKind::Session.as_str()])
                .map(|n| n > 0)
        })
        .await
    }

    /// Delete the link row; its scopes when it had not expired by `now`.
    pub async fn redeem_link(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<Scopes>, IndexError> {
        let (hash, now) = (*id_hash, to_nanos(now));
        self.write_grouped(move |conn| {
            let row = conn
                .prepare_cached(
                    "DELETE FROM sessions WHERE id_hash = ?1 AND kind = ?2 \
                     RETURNING scopes, expires",
                )?
                .query_row(params![hash.as_slice(), SessionKind::Link.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?;
            Ok(row
                .filter(|(_, expires)| *expires > now)
                .map(|(scopes, _)| Scopes::from_db(&scopes)))
        })
        .await
    }

    /// The overview figures, from one read transaction.
    pub async fn overview(&self, now: OffsetDateTime, days: u32) -> Result<Overview, IndexError> {
        let (from, to) = day_range(now, days);
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction()?;
            let (assets, bytes) = snapshot
                .prepare_cached(
                    "SELECT coalesce(sum(assets), 0), coalesce(sum(bytes), 0) FROM days",
                )?
                .query_row([], |r| Ok((count(r.get(0)?), count(r.get(1)?))))?;
            let problems = snapshot
                .prepare_cached(
                    "SELECT count(*) FROM assets WHERE integrity IN ('corrupt', 'missing')",
                )?
                .query_row([], |r| r.get(0))
                .map(count)?;
            let per_day = snapshot
                .prepare_cached(
                    "SELECT day, assets, bytes FROM days \
                     WHERE day BETWEEN ?1 AND ?2 AND assets > 0 ORDER BY day",
                )?
                .query_map([from, to], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .filter_map(|row| match row {
                    Ok((day, assets, bytes)) => day_date(day).map(|day| {
                        Ok(DayCount {
                            day,
                            assets: count(assets),
                            bytes: count(bytes),
                        })
                    }),
                    Err(e) => Some(Err(e)),
                })
                .collect::<rusqlite::Result<_>>()?;
            let clients = snapshot
                .prepare_cached(
                    "SELECT client, sightings, last_seen FROM clients \
                     ORDER BY last_seen DESC, client",
                )?
                .query_map([], |r| {
                    Ok(ClientSummary {
                        client: r.get(0)?,
                        sightings: count(r.get(1)?),
                        last_seen: from_nanos(r.get(2)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Overview {
                assets,
                bytes,
                problems,
                per_day,
                clients,
            })
        })
        .await
    }
}

/// A stored count as a figure (never below 0).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
