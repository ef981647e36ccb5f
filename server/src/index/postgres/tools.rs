//! What the operator's tools need beyond the request path: a consistent
//! export, `fsck`'s walk over every key, and its repairs.

use asset_catalog_proto::{AssetDetail, Sha256Hex};
use tokio::sync::mpsc;

use super::query::{ASSET_COLUMNS, asset_from_row, sighting_from_row};
use super::write::{insert_asset, upsert_sighting};
use super::{PgFail, PgIndex};
use crate::index::types::{KeyRow, RebuildRecord, from_nanos, to_i64};
use crate::index::{ExportItem, IndexError};

/// Assets read per round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

impl PgIndex {
    /// Every asset with its sightings, from one REPEATABLE READ snapshot.
    pub async fn export(&self, out: mpsc::Sender<ExportItem>) -> Result<(), IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let count: i64 = tx
                .query_one("SELECT count(*) FROM assets", &[])
                .await?
                .get(0);
            if out
                .send(ExportItem::Count(u64::try_from(count).unwrap_or_default()))
                .await
                .is_err()
            {
                return Ok(());
            }
            let page_sql = format!(
                "SELECT {ASSET_COLUMNS} FROM assets a WHERE (a.first_seen, a.sha256) > ($1, $2) \
                 ORDER BY a.first_seen, a.sha256 LIMIT $3"
            );
            let mut after = (i64::MIN, String::new());
            loop {
                let rows = tx
                    .query(&page_sql, &[&after.0, &after.1, &EXPORT_PAGE])
                    .await?;
                let Some(last) = rows.last() else {
                    break;
                };
                after = (last.get(5), last.get(0));
                for row in &rows {
                    let asset = asset_from_row(row)?;
                    let sightings = tx
                        .query(
                            "SELECT client, path, name, mtime, seen_at, token FROM sightings \
                             WHERE sha256 = $1 ORDER BY seen_at DESC, client, path",
                            &[&asset.sha256.as_str()],
                        )
                        .await?
                        .iter()
                        .map(sighting_from_row)
                        .collect();
                    let detail = AssetDetail {
                        asset,
                        sightings,
                        sightings_cursor: None,
                        uploaded_by: None,
                    };
                    if out.send(ExportItem::Asset(Box::new(detail))).await.is_err() {
                        return Ok(());
                    }
                }
            }
            tx.commit().await?;
            Ok::<_, PgFail>(())
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Up to `limit` assets' keys after `after`, in hash order.
    pub async fn key_page(
        &self,
        after: Option<Sha256Hex>,
        limit: usize,
    ) -> Result<Vec<KeyRow>, IndexError> {
        let client = self.client().await?;
        let after = after.map(|s| s.to_string()).unwrap_or_default();
        let rows = client
            .query(
                "SELECT sha256, key, size, first_seen FROM assets WHERE sha256 > $1 \
                 ORDER BY sha256 LIMIT $2",
                &[&after, &to_i64(limit as u64)],
            )
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                let sha: String = r.get(0);
                Ok(KeyRow {
                    sha256: sha
                        .parse()
                        .map_err(|e| IndexError::Postgres(format!("assets.sha256 {sha:?}: {e}")))?,
                    key: r.get(1),
                    size: u64::try_from(r.get::<_, i64>(2)).unwrap_or_default(),
                    first_seen: from_nanos(r.get(3)),
                })
            })
            .collect()
    }

    /// Index content found in the bucket; `false` when it was indexed meanwhile.
    pub async fn adopt(&self, record: RebuildRecord) -> Result<bool, IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            let created = insert_asset(&tx, &record.asset).await?;
            if created && let Some(s) = &record.sighting {
                upsert_sighting(&tx, &record.asset.sha256, s, u64::MAX).await?;
            }
            tx.commit().await?;
            Ok::<_, PgFail>(created)
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Point an asset at another key; `false` when the hash is not indexed.
    pub async fn set_key(&self, sha: &Sha256Hex, key: &str) -> Result<bool, IndexError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE assets SET key = $2 WHERE sha256 = $1",
                &[&sha.as_str(), &key],
            )
            .await
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }
}
