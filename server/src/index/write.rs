//! Write operations: record a new asset with its first sighting, record a
//! further sighting, delete, and rebuild everything in one transaction (for
//! `reindex`). Each is a single transaction on the writer connection.

use asset_catalog_proto::{Asset, Sha256Hex};
use rusqlite::{Connection, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::query::get_asset;
use super::{Index, IndexError, to_nanos};

/// Core metadata of newly stored content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAsset {
    pub sha256: Sha256Hex,
    pub key: String,
    pub size: u64,
    pub content_type: String,
    pub name: String,
    pub first_seen: OffsetDateTime,
}

/// One place a client saw the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SightingRecord {
    pub client: String,
    pub path: String,
    pub name: String,
    pub mtime: Option<OffsetDateTime>,
    pub seen_at: OffsetDateTime,
}

/// One asset for [`Index::rebuild`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildRecord {
    pub asset: NewAsset,
    pub sighting: Option<SightingRecord>,
}

impl Index {
    /// Insert `asset` unless the hash is known, then record `sighting`.
    /// Returns the stored asset and whether this call created it.
    pub async fn insert(
        &self,
        asset: NewAsset,
        sighting: SightingRecord,
    ) -> Result<(Asset, bool), IndexError> {
        self.write_grouped(move |conn| {
            let created = insert_asset(conn, &asset)? == 1;
            upsert_sighting(conn, &asset.sha256, &sighting)?;
            let stored =
                get_asset(conn, &asset.sha256)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok((stored, created))
        })
        .await
    }

    /// Record a sighting of known content; `None` when the hash is unknown.
    pub async fn record_sighting(
        &self,
        sha: &Sha256Hex,
        sighting: SightingRecord,
    ) -> Result<Option<Asset>, IndexError> {
        let sha = sha.clone();
        self.write_grouped(move |conn| {
            if get_asset(conn, &sha)?.is_none() {
                return Ok(None);
            }
            upsert_sighting(conn, &sha, &sighting)?;
            get_asset(conn, &sha)
        })
        .await
    }

    /// Remove an asset and its sightings; `false` when it was not there.
    pub async fn delete(&self, sha: &Sha256Hex) -> Result<bool, IndexError> {
        let sha = sha.clone();
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM assets WHERE sha256 = ?", [sha.as_str()])?;
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
                            upsert_sighting(&tx, &record.asset.sha256, s)?;
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

fn insert_asset(tx: &Connection, a: &NewAsset) -> rusqlite::Result<usize> {
    let size = i64::try_from(a.size).unwrap_or(i64::MAX);
    let seen = to_nanos(a.first_seen);
    tx.prepare_cached(
        "INSERT INTO assets (sha256, key, size, content_type, name, first_seen, last_seen) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (sha256) DO NOTHING",
    )?
    .execute(params![
        a.sha256.as_str(),
        a.key,
        size,
        a.content_type,
        a.name,
        seen
    ])
}

fn upsert_sighting(tx: &Connection, sha: &Sha256Hex, s: &SightingRecord) -> rusqlite::Result<()> {
    let mtime = s.mtime.and_then(|m| m.format(&Rfc3339).ok());
    let seen = to_nanos(s.seen_at);
    tx.prepare_cached(
        "INSERT INTO sightings (sha256, client, path, name, mtime, seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (sha256, client, path) DO UPDATE SET \
         name = excluded.name, mtime = excluded.mtime, seen_at = excluded.seen_at",
    )?
    .execute(params![sha.as_str(), s.client, s.path, s.name, mtime, seen])?;
    tx.prepare_cached("UPDATE assets SET last_seen = max(last_seen, ?2) WHERE sha256 = ?1")?
        .execute(params![sha.as_str(), seen])?;
    Ok(())
}
