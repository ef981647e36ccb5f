//! What the operator's tools need beyond the request path: a consistent
//! export, `fsck`'s walk over every key, and its repairs.

use asset_catalog_proto::{AssetDetail, Sha256Hex};
use rusqlite::{OptionalExtension, params};
use tokio::sync::mpsc;

use super::SqliteIndex;
use super::query::{count_assets, each_detail};
use super::write::{insert_asset, upsert_sighting};
use crate::index::types::{KeyRow, RebuildRecord, from_nanos, to_i64};
use crate::index::{ExportItem, IndexError};

impl SqliteIndex {
    /// Every asset with its sightings from one read transaction.
    pub async fn export(&self, tx: mpsc::Sender<ExportItem>) -> Result<(), IndexError> {
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction()?;
            let count = count_assets(&snapshot)?;
            if tx.blocking_send(ExportItem::Count(count)).is_err() {
                return Ok(());
            }
            // A closed channel (the writer failed) ends the walk early.
            let _ = each_detail(&snapshot, |detail: AssetDetail| {
                tx.blocking_send(ExportItem::Asset(Box::new(detail)))
            })?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` assets' keys after `after`, in hash order.
    pub async fn key_page(
        &self,
        after: Option<Sha256Hex>,
        limit: usize,
    ) -> Result<Vec<KeyRow>, IndexError> {
        let after = after.map(|s| s.to_string()).unwrap_or_default();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT sha256, key, size, first_seen FROM assets WHERE sha256 > ?1 \
                 ORDER BY sha256 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, to_i64(limit as u64)], |r| {
                let sha: String = r.get(0)?;
                Ok(KeyRow {
                    sha256: sha.parse().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                    key: r.get(1)?,
                    size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or_default(),
                    first_seen: from_nanos(r.get(3)?),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Index content found in the bucket; `false` when it was indexed meanwhile.
    pub async fn adopt(&self, record: RebuildRecord) -> Result<bool, IndexError> {
        self.write_grouped(move |conn| {
            let created = insert_asset(conn, &record.asset)? == 1;
            if created && let Some(s) = &record.sighting {
                upsert_sighting(conn, &record.asset.sha256, s, u64::MAX)?;
            }
            Ok(created)
        })
        .await
    }

    /// Point an asset at another key; `false` when the hash is not indexed.
    pub async fn set_key(&self, sha: &Sha256Hex, key: &str) -> Result<bool, IndexError> {
        let (sha, key) = (sha.to_string(), key.to_owned());
        self.write_grouped(move |conn| {
            conn.prepare_cached("UPDATE assets SET key = ?2 WHERE sha256 = ?1")?
                .execute(params![sha, key])
                .map(|n| n > 0)
        })
        .await
    }

    /// Does the index hold `sha`? (A fresh read, for `fsck`'s second look.)
    pub async fn holds(&self, sha: &Sha256Hex) -> Result<bool, IndexError> {
        let sha = sha.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM assets WHERE sha256 = ?1")?
                .query_row([sha], |_| Ok(()))
                .optional()
                .map(|row| row.is_some())
        })
        .await
    }
}
