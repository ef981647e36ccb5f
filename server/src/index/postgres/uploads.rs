//! Upload sessions on PostgreSQL (schema version 4), shared by every
//! server: a session one server began is continued by any other. An
//! advance is `UPDATE … WHERE id = $1 AND "offset" = $2` and its part's
//! insert in one transaction (READ COMMITTED): of two servers advancing
//! from the same offset, the second waits for the first's row lock, then
//! re-checks the row, finds the offset moved and changes nothing. A read
//! is one statement (the row and its parts from one snapshot); ending a
//! session locks its row first, so an advance under way is either in the
//! row returned or told the session is gone.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{PgFail, PgIndex};
use crate::index::IndexError;
use crate::index::types::{from_nanos, to_i64, to_nanos};
use crate::index::uploads::{NewUpload, StoredPart, UPLOAD_COLUMNS, UploadRow};

impl PgIndex {
    /// Store a new session at offset 0 with no parts.
    pub async fn create_upload(&self, new: &NewUpload) -> Result<(), IndexError> {
        let client = self.client().await?;
        let created = to_nanos(new.created);
        client
            .execute(
                "INSERT INTO uploads (id, token_id, sha256, length, name, path, mtime, client, \
                     key, multipart_id, hash_state, created, expires, \"offset\", updated) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $12)",
                &[
                    &new.id,
                    &new.token_id,
                    &new.sha256.as_str(),
                    &to_i64(new.length),
                    &new.name,
                    &new.path,
                    &new.mtime,
                    &new.client,
                    &new.key,
                    &new.multipart_id,
                    &new.hash_state,
                    &created,
                    &to_nanos(new.expires),
                ],
            )
            .await
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// The session `id` with its parts.
    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, IndexError> {
        let client = self.client().await?;
        let run = async {
            let sql =
                format!("SELECT {UPLOAD_COLUMNS}, {PART_ARRAYS} FROM uploads u WHERE id = $1");
            let row = client
                .query_opt(&client.prepare_cached(&sql).await?, &[&id])
                .await?;
            row.as_ref().map(upload_with_parts).transpose()
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Advance the session from offset `from` by one part; `false` when
    /// the offset moved.
    pub async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        part: &StoredPart,
        part_len: u64,
        hash_state: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, IndexError> {
        let mut client = self.client().await?;
        let to = to_i64(from.saturating_add(part_len));
        let run = async {
            let tx = client.transaction().await?;
            let moved = tx
                .execute(
                    &tx.prepare_cached(
                        "UPDATE uploads SET \"offset\" = $3, hash_state = $4, updated = $5 \
                         WHERE id = $1 AND \"offset\" = $2",
                    )
                    .await?,
                    &[&id, &to_i64(from), &to, &hash_state, &to_nanos(now)],
                )
                .await?;
            if moved == 0 {
                return Ok(false);
            }
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO upload_parts (upload_id, number, id) VALUES ($1, $2, $3)",
                )
                .await?,
                &[&id, &i64::from(part.number), &part.id],
            )
            .await?;
            tx.commit().await?;
            Ok::<_, PgFail>(true)
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Delete the session and its parts; the row as it was.
    pub async fn end_upload(&self, id: &str) -> Result<Option<UploadRow>, IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            // The row lock waits for an advance under way; the parts are
            // then read by a later statement, which sees its part.
            let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1 FOR UPDATE");
            let Some(row) = tx
                .query_opt(&tx.prepare_cached(&sql).await?, &[&id])
                .await?
            else {
                return Ok(None);
            };
            let mut upload = upload_from_row(&row)?;
            let parts = tx
                .query(
                    &tx.prepare_cached(
                        "SELECT number, id FROM upload_parts WHERE upload_id = $1 ORDER BY number",
                    )
                    .await?,
                    &[&id],
                )
                .await?;
            upload.parts = parts
                .iter()
                .map(|r| stored_part(r.get(0), r.get(1)))
                .collect::<Result<_, _>>()?;
            // Its parts go with it (ON DELETE CASCADE).
            tx.execute(
                &tx.prepare_cached("DELETE FROM uploads WHERE id = $1")
                    .await?,
                &[&id],
            )
            .await?;
            tx.commit().await?;
            Ok::<_, PgFail>(Some(upload))
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Up to `limit` sessions expired by `now`, those that expired first first.
    pub async fn expired_uploads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<UploadRow>, IndexError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let run = async {
            let sql = format!(
                "SELECT {UPLOAD_COLUMNS}, {PART_ARRAYS} FROM uploads u \
                 WHERE expires <= $1 ORDER BY expires, id LIMIT $2"
            );
            let rows = client
                .query(
                    &client.prepare_cached(&sql).await?,
                    &[&to_nanos(now), &limit],
                )
                .await?;
            rows.iter()
                .map(upload_with_parts)
                .collect::<Result<Vec<_>, PgFail>>()
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Open sessions and the sum of their offsets.
    pub async fn upload_totals(&self) -> Result<(u64, u64), IndexError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(sum(\"offset\"), 0)::bigint FROM uploads",
                &[],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok((count(row.get(0)), count(row.get(1))))
    }
}

/// A session's part numbers and ids, by number, as two arrays after
/// [`UPLOAD_COLUMNS`] (`uploads` is `u`).
const PART_ARRAYS: &str = "\
    ARRAY(SELECT p.number FROM upload_parts p WHERE p.upload_id = u.id ORDER BY p.number), \
    ARRAY(SELECT p.id FROM upload_parts p WHERE p.upload_id = u.id ORDER BY p.number)";

/// A row of [`UPLOAD_COLUMNS`] and [`PART_ARRAYS`].
fn upload_with_parts(r: &Row) -> Result<UploadRow, PgFail> {
    let mut upload = upload_from_row(r)?;
    let numbers: Vec<i64> = r.get(15);
    let ids: Vec<String> = r.get(16);
    upload.parts = numbers
        .into_iter()
        .zip(ids)
        .map(|(number, id)| stored_part(number, id))
        .collect::<Result<_, _>>()?;
    Ok(upload)
}

/// A row of [`UPLOAD_COLUMNS`], without its parts.
fn upload_from_row(r: &Row) -> Result<UploadRow, PgFail> {
    let sha: String = r.get(2);
    let sha256 = sha
        .parse()
        .map_err(|e| PgFail::Bad(format!("uploads.sha256 {sha:?}: {e}")))?;
    Ok(UploadRow {
        id: r.get(0),
        token_id: r.get(1),
        sha256,
        length: count(r.get(3)),
        name: r.get(4),
        path: r.get(5),
        mtime: r.get(6),
        client: r.get(7),
        key: r.get(8),
        multipart_id: r.get(9),
        hash_state: r.get(10),
        created: from_nanos(r.get(11)),
        expires: from_nanos(r.get(12)),
        offset: count(r.get(13)),
        parts: Vec::new(),
        updated: from_nanos(r.get(14)),
    })
}

fn stored_part(number: i64, id: String) -> Result<StoredPart, PgFail> {
    let number = u32::try_from(number)
        .map_err(|_| PgFail::Bad(format!("upload_parts.number {number} is out of range")))?;
    Ok(StoredPart { number, id })
}

/// A stored size or count as a figure (never below 0).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
