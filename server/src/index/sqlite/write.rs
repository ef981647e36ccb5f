//! Write operations: record a new asset with its first sighting, record a
//! further sighting, delete, and rebuild everything in one transaction (for
//! `reindex`). Each is a single transaction on the writer connection.
//!
//! Every write carries the id of the token that made it (`None` with auth
//! off): `assets.uploaded_by`, `sightings.token`, a `deletions` row. New
//! content adds its size to its uploader's `tokens.stored_bytes` (a delete
//! gives it back), which the per-token byte quota is checked against. An
//! asset holds at most `cap` sightings: past it a new place is not recorded
//! (an existing place is still refreshed).

use asset_catalog_proto::{Asset, Sha256Hex};
use rusqlite::{Connection, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SqliteIndex;
use super::query::get_asset;
use crate::index::IndexError;
use crate::index::types::{Inserted, NewAsset, RebuildRecord, SightingRecord, to_i64, to_nanos};

impl SqliteIndex {
    /// Insert `asset` unless the hash is known, then record `sighting`.
    /// Returns the stored asset and whether this call created it.
    pub async fn insert(
        &self,
        asset: NewAsset,
        sighting: SightingRecord,
        cap: u64,
    ) -> Result<Inserted, IndexError> {
        self.write_grouped(move |conn| {
            let created = insert_asset(conn, &asset)? == 1;
            if created && let Some(token) = &asset.uploaded_by {
                conn.prepare_cached(
                    "UPDATE tokens SET stored_bytes = stored_bytes + ?2 WHERE id = ?1",
                )?
                .execute(params![token, to_i64(asset.size)])?;
            }
            // A row just created has no sightings: nothing to refresh or count.
            let sighted = if created {
                insert_sighting(conn, &asset.sha256, &sighting)?;
                touch_asset(conn, &asset.sha256, &sighting)?;
                true
            } else {
                upsert_sighting(conn, &asset.sha256, &sighting, cap)?
            };
            let stored =
                get_asset(conn, &asset.sha256)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok(Inserted {
                asset: stored,
                created,
                sighted,
            })
        })
        .await
    }

    /// Record a sighting of known content; `None` when the hash is unknown,
    /// else the asset and whether the sighting was recorded (not at the cap).
    pub async fn record_sighting(
        &self,
        sha: &Sha256Hex,
        sighting: SightingRecord,
        cap: u64,
    ) -> Result<Option<(Asset, bool)>, IndexError> {
        let sha = sha.clone();
        self.write_grouped(move |conn| {
            if get_asset(conn, &sha)?.is_none() {
                return Ok(None);
            }
            let sighted = upsert_sighting(conn, &sha, &sighting, cap)?;
            Ok(get_asset(conn, &sha)?.map(|a| (a, sighted)))
        })
        .await
    }

    /// Remove an asset and its sightings, noting who did it in `deletions`
    /// and giving the uploader its bytes back; `false` when it was not there.
    pub async fn delete(&self, sha: &Sha256Hex, token: Option<&str>) -> Result<bool, IndexError> {
        let (sha, token) = (sha.clone(), token.map(str::to_owned));
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO deletions (sha256, key, size, token, deleted_at) \
                 SELECT sha256, key, size, ?2, ?3 FROM assets WHERE sha256 = ?1",
                params![sha.as_str(), token, now],
            )?;
            tx.execute(
                "UPDATE tokens SET stored_bytes = max(0, stored_bytes - \
                 (SELECT size FROM assets WHERE sha256 = ?1)) \
                 WHERE id = (SELECT uploaded_by FROM assets WHERE sha256 = ?1)",
                [sha.as_str()],
            )?;
            let n = tx.execute("DELETE FROM assets WHERE sha256 = ?", [sha.as_str()])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    /// Replace the whole index with the records received from `rx`, in one
    /// transaction. If the sender goes away without sending `None` (the
    /// producer failed), nothing changes.
    pub async fn rebuild(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<Option<RebuildRecord>>,
    ) -> Result<Option<u64>, IndexError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM sightings", [])?;
            tx.execute("DELETE FROM assets", [])?;
            let mut count = 0u64;
            loop {
                match rx.blocking_recv() {
                    Some(Some(record)) => {
                        count += insert_asset(&tx, &record.asset)? as u64;
                        if let Some(s) = &record.sighting {
                            upsert_sighting(&tx, &record.asset.sha256, s, u64::MAX)?;
                        }
                    }
                    Some(None) => break,
                    None => return Ok(None),
                }
            }
            tx.commit()?;
            Ok(Some(count))
        })
        .await
    }
}

pub(super) fn insert_asset(tx: &Connection, a: &NewAsset) -> rusqlite::Result<usize> {
    let seen = to_nanos(a.first_seen);
    tx.prepare_cached(
        "INSERT INTO assets (sha256, key, size, content_type, name, names, first_seen, last_seen, \
             uploaded_by, integrity, verified_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6, ?7, iif(?8 > 0, 'ok', 'unverified'), ?8) \
         ON CONFLICT (sha256) DO NOTHING",
    )?
    .execute(params![
        a.sha256.as_str(),
        a.key,
        to_i64(a.size),
        a.content_type,
        a.name,
        seen,
        a.uploaded_by,
        a.verified_at.map_or(0, to_nanos)
    ])
}

/// Refresh a known place, or add a new one unless the asset already has
/// `cap` sightings; `false` when the cap kept it out.
pub(super) fn upsert_sighting(
    tx: &Connection,
    sha: &Sha256Hex,
    s: &SightingRecord,
    cap: u64,
) -> rusqlite::Result<bool> {
    let refreshed = run_sighting(
        tx,
        "UPDATE sightings SET name = ?4, mtime = ?5, seen_at = ?6, token = ?7 \
         WHERE sha256 = ?1 AND client = ?2 AND path = ?3",
        sha,
        s,
    )?;
    if refreshed == 0 {
        // Counting stops at the cap: the cost is bounded whatever the table holds.
        let held: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM sightings WHERE sha256 = ?1 LIMIT ?2)",
            )?
            .query_row(params![sha.as_str(), to_i64(cap)], |r| r.get(0))?;
        if u64::try_from(held).unwrap_or_default() >= cap {
            return Ok(false);
        }
        insert_sighting(tx, sha, s)?;
    }
    touch_asset(tx, sha, s)?;
    Ok(true)
}

fn insert_sighting(tx: &Connection, sha: &Sha256Hex, s: &SightingRecord) -> rusqlite::Result<()> {
    run_sighting(
        tx,
        "INSERT INTO sightings (sha256, client, path, name, mtime, seen_at, token) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        sha,
        s,
    )
    .map(drop)
}

/// Run `sql` with a sighting's columns as ?1–?7: sha256, client, path,
/// name, mtime, seen_at, token. Returns the rows changed.
fn run_sighting(
    tx: &Connection,
    sql: &str,
    sha: &Sha256Hex,
    s: &SightingRecord,
) -> rusqlite::Result<usize> {
    let mtime = s.mtime.and_then(|m| m.format(&Rfc3339).ok());
    tx.prepare_cached(sql)?.execute(params![
        sha.as_str(),
        s.client,
        s.path,
        s.name,
        mtime,
        to_nanos(s.seen_at),
        s.token
    ])
}

fn touch_asset(tx: &Connection, sha: &Sha256Hex, s: &SightingRecord) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE assets SET last_seen = max(last_seen, ?2) WHERE sha256 = ?1")?
        .execute(params![sha.as_str(), to_nanos(s.seen_at)])
        .map(drop)
}
