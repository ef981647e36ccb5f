//! Write operations, each one transaction (READ COMMITTED): record a new
//! asset with its first sighting, record a further sighting, delete, and
//! rebuild everything (for `reindex`). Two servers inserting the same hash
//! at once meet at the primary key: `ON CONFLICT DO NOTHING` makes the
//! second wait for the first's commit and then see the row, so exactly one
//! of them is told `created` and the key it chose is the one kept.

use asset_catalog_proto::{Asset, Sha256Hex};
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::query::get_asset;
use super::{PgFail, PgIndex};
use crate::index::IndexError;
use crate::index::types::{Inserted, NewAsset, RebuildRecord, SightingRecord, to_i64, to_nanos};

impl PgIndex {
    /// Insert `asset` unless the hash is known, then record `sighting`.
    pub async fn insert(
        &self,
        asset: NewAsset,
        sighting: SightingRecord,
        cap: u64,
    ) -> Result<Inserted, IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            let created = insert_asset(&tx, &asset).await?;
            if created && let Some(token) = &asset.uploaded_by {
                tx.execute(
                    &tx.prepare_cached(
                        "UPDATE tokens SET stored_bytes = stored_bytes + $2 WHERE id = $1",
                    )
                    .await?,
                    &[token, &to_i64(asset.size)],
                )
                .await?;
            }
            // A row just created has no sightings: nothing to refresh or count.
            let sighted = if created {
                insert_sighting(&tx, &asset.sha256, &sighting).await?;
                true
            } else {
                upsert_sighting(&tx, &asset.sha256, &sighting, cap).await?
            };
            let stored = get_asset(&tx, &asset.sha256).await?.ok_or_else(|| {
                PgFail::Bad("the asset row vanished inside its transaction".into())
            })?;
            tx.commit().await?;
            Ok::<_, PgFail>(Inserted {
                asset: stored,
                created,
                sighted,
            })
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Record a sighting of known content; `None` when the hash is unknown.
    pub async fn record_sighting(
        &self,
        sha: &Sha256Hex,
        sighting: SightingRecord,
        cap: u64,
    ) -> Result<Option<(Asset, bool)>, IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            // Locks the row: a delete of the same hash waits for this commit.
            let known = tx
                .query_opt(
                    &tx.prepare_cached("SELECT 1 FROM assets WHERE sha256 = $1 FOR SHARE")
                        .await?,
                    &[&sha.as_str()],
                )
                .await?;
            if known.is_none() {
                return Ok(None);
            }
            let sighted = upsert_sighting(&tx, sha, &sighting, cap).await?;
            let asset = get_asset(&tx, sha).await?;
            tx.commit().await?;
            Ok::<_, PgFail>(asset.map(|a| (a, sighted)))
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Remove an asset and its sightings, noting who did it in `deletions`
    /// and giving the uploader its bytes back; `false` when it was not there.
    pub async fn delete(&self, sha: &Sha256Hex, token: Option<&str>) -> Result<bool, IndexError> {
        let mut client = self.client().await?;
        let now = to_nanos(OffsetDateTime::now_utc());
        let run = async {
            let tx = client.transaction().await?;
            let gone = tx
                .query_opt(
                    &tx.prepare_cached(
                        "DELETE FROM assets WHERE sha256 = $1 RETURNING key, size, uploaded_by",
                    )
                    .await?,
                    &[&sha.as_str()],
                )
                .await?;
            let Some(row) = gone else {
                return Ok(false);
            };
            let (key, size, uploader): (String, i64, Option<String>) =
                (row.get(0), row.get(1), row.get(2));
            tx.execute(
                &tx.prepare_cached("INSERT INTO deletions (sha256, key, size, token, deleted_at) VALUES ($1, $2, $3, $4, $5)").await?,
                &[&sha.as_str(), &key, &size, &token, &now],
            )
            .await?;
            if let Some(uploader) = uploader {
                tx.execute(
                    &tx.prepare_cached("UPDATE tokens SET stored_bytes = greatest(0, stored_bytes - $2) WHERE id = $1").await?,
                    &[&uploader, &size],
                )
                .await?;
            }
            tx.commit().await?;
            Ok::<_, PgFail>(true)
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Replace the whole index with the records received from `rx`, in one
    /// transaction; nothing changes unless the sender ends with `None`.
    pub async fn rebuild(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<Option<RebuildRecord>>,
    ) -> Result<Option<u64>, IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            // Row by row, the overview's summary rows would each be updated
            // once per record in this one transaction (see `schema::V3`).
            tx.batch_execute(super::schema::DEFER_SUMMARIES).await?;
            tx.batch_execute("DELETE FROM sightings; DELETE FROM assets;")
                .await?;
            let mut count = 0u64;
            loop {
                match rx.recv().await {
                    Some(Some(record)) => {
                        count += u64::from(insert_asset(&tx, &record.asset).await?);
                        if let Some(s) = &record.sighting {
                            upsert_sighting(&tx, &record.asset.sha256, s, u64::MAX).await?;
                        }
                    }
                    Some(None) => break,
                    None => return Ok(None),
                }
            }
            tx.batch_execute(super::schema::APPLY_DEFERRED).await?;
            tx.commit().await?;
            Ok::<_, PgFail>(Some(count))
        };
        run.await.map_err(|e| self.fail(e))
    }
}

/// Insert unless present; `true` when this call created the row.
pub(super) async fn insert_asset<C: GenericClient>(
    client: &C,
    a: &NewAsset,
) -> Result<bool, PgFail> {
    let seen = to_nanos(a.first_seen);
    let n = client
        .execute(
            &client.prepare_cached("INSERT INTO assets (sha256, key, size, content_type, name, names, first_seen, last_seen, \
                 uploaded_by, integrity, verified_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $6, $7, CASE WHEN $8::bigint > 0 THEN 'ok' ELSE 'unverified' END, $8) \
             ON CONFLICT (sha256) DO NOTHING").await?,
            &[
                &a.sha256.as_str(),
                &a.key,
                &to_i64(a.size),
                &a.content_type,
                &a.name,
                &seen,
                &a.uploaded_by,
                &a.verified_at.map_or(0, to_nanos),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Refresh a known place, or add a new one unless the asset already has
/// `cap` sightings; `false` when the cap kept it out.
pub(super) async fn upsert_sighting<C: GenericClient>(
    client: &C,
    sha: &Sha256Hex,
    s: &SightingRecord,
    cap: u64,
) -> Result<bool, PgFail> {
    const REFRESH: &str = "UPDATE sightings SET name = $4, mtime = $5, seen_at = $6, token = $7 \
                           WHERE sha256 = $1 AND client = $2 AND path = $3";
    if run_sighting(client, REFRESH, sha, s).await? == 0 {
        // Counting stops at the cap: the cost is bounded whatever the table holds.
        let count = client
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM sightings WHERE sha256 = $1 LIMIT $2) c",
            )
            .await?;
        let held: i64 = client
            .query_one(&count, &[&sha.as_str(), &to_i64(cap)])
            .await?
            .get(0);
        if u64::try_from(held).unwrap_or_default() >= cap {
            return Ok(false);
        }
        insert_sighting(client, sha, s).await?;
    }
    let touch = client
        .prepare_cached("UPDATE assets SET last_seen = greatest(last_seen, $2) WHERE sha256 = $1")
        .await?;
    client
        .execute(&touch, &[&sha.as_str(), &to_nanos(s.seen_at)])
        .await?;
    Ok(true)
}

/// Add a place (a concurrent insert of the same place, through another
/// server, refreshes it instead).
async fn insert_sighting<C: GenericClient>(
    client: &C,
    sha: &Sha256Hex,
    s: &SightingRecord,
) -> Result<u64, PgFail> {
    const INSERT: &str = "INSERT INTO sightings (sha256, client, path, name, mtime, seen_at, token) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7) \
                          ON CONFLICT (sha256, client, path) DO UPDATE SET name = EXCLUDED.name, \
                          mtime = EXCLUDED.mtime, seen_at = EXCLUDED.seen_at, token = EXCLUDED.token";
    run_sighting(client, INSERT, sha, s).await
}

/// Run `sql` with a sighting's columns as $1–$7: sha256, client, path,
/// name, mtime, seen_at, token. Returns the rows changed.
async fn run_sighting<C: GenericClient>(
    client: &C,
    sql: &str,
    sha: &Sha256Hex,
    s: &SightingRecord,
) -> Result<u64, PgFail> {
    let mtime = s.mtime.and_then(|m| m.format(&Rfc3339).ok());
    let seen = to_nanos(s.seen_at);
    let statement = client.prepare_cached(sql).await?;
    Ok(client
        .execute(
            &statement,
            &[
                &sha.as_str(),
                &s.client,
                &s.path,
                &s.name,
                &mtime,
                &seen,
                &s.token,
            ],
        )
        .await?)
}
