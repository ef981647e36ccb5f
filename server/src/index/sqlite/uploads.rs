//! Upload sessions on SQLite (schema version 7). Writes join the group
//! commit (`group.rs`), each in a savepoint of its own: an advance's offset
//! update and its part's row commit or roll back together. One process
//! owns the file and its writer connection runs one change at a time, so
//! of two advances from the same offset the second finds it moved. Reads
//! take the row and its parts in one read transaction (one snapshot).

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::SqliteIndex;
use crate::index::IndexError;
use crate::index::types::{from_nanos, to_i64, to_nanos};
use crate::index::uploads::{NewUpload, StoredPart, UPLOAD_COLUMNS, UploadRow};

impl SqliteIndex {
    /// Store a new session at offset 0 with no parts.
    pub async fn create_upload(&self, new: &NewUpload) -> Result<(), IndexError> {
        let new = new.clone();
        self.write_grouped(move |conn| {
            let created = to_nanos(new.created);
            conn.prepare_cached(
                "INSERT INTO uploads (id, token_id, sha256, length, name, path, mtime, client, \
                     key, multipart_id, hash_state, created, expires, \"offset\", updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, ?12)",
            )?
            .execute(params![
                new.id,
                new.token_id,
                new.sha256.as_str(),
                to_i64(new.length),
                new.name,
                new.path,
                new.mtime,
                new.client,
                new.key,
                new.multipart_id,
                new.hash_state,
                created,
                to_nanos(new.expires)
            ])
            .map(drop)
        })
        .await
    }

    /// The session `id` with its parts.
    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, IndexError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction()?;
            load(&snapshot, &id)
        })
        .await
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
        let (id, part, hash_state) = (id.to_owned(), part.clone(), hash_state.to_vec());
        let to = to_i64(from.saturating_add(part_len));
        let (from, now) = (to_i64(from), to_nanos(now));
        self.write_grouped(move |conn| {
            let moved = conn
                .prepare_cached(
                    "UPDATE uploads SET \"offset\" = ?3, hash_state = ?4, updated = ?5 \
                     WHERE id = ?1 AND \"offset\" = ?2",
                )?
                .execute(params![id, from, to, hash_state, now])?;
            if moved == 0 {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO upload_parts (upload_id, number, id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, part.number, part.id])?;
            Ok(true)
        })
        .await
    }

    /// Delete the session and its parts; the row as it was.
    pub async fn end_upload(&self, id: &str) -> Result<Option<UploadRow>, IndexError> {
        let id = id.to_owned();
        self.write_grouped(move |conn| {
            let row = load(conn, &id)?;
            if row.is_some() {
                // Its parts go with it (ON DELETE CASCADE).
                conn.prepare_cached("DELETE FROM uploads WHERE id = ?1")?
                    .execute([&id])?;
            }
            Ok(row)
        })
        .await
    }

    /// Up to `limit` sessions expired by `now`, those that expired first first.
    pub async fn expired_uploads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<UploadRow>, IndexError> {
        let now = to_nanos(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction()?;
            let mut rows = snapshot
                .prepare_cached(&format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE expires <= ?1 \
                     ORDER BY expires, id LIMIT ?2"
                ))?
                .query_map(params![now, limit], upload_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for row in &mut rows {
                row.parts = parts_of(&snapshot, &row.id)?;
            }
            Ok(rows)
        })
        .await
    }

    /// Open sessions and the sum of their offsets.
    pub async fn upload_totals(&self) -> Result<(u64, u64), IndexError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT count(*), coalesce(sum(\"offset\"), 0) FROM uploads")?
                .query_row([], |r| Ok((count(r.get(0)?), count(r.get(1)?))))
        })
        .await
    }
}

/// The session `id` with its parts (call inside a transaction).
fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<UploadRow>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"
        ))?
        .query_row([id], upload_from_row)
        .optional()?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    row.parts = parts_of(conn, id)?;
    Ok(Some(row))
}

/// The stored parts of session `id`, by number.
fn parts_of(conn: &Connection, id: &str) -> rusqlite::Result<Vec<StoredPart>> {
    conn.prepare_cached("SELECT number, id FROM upload_parts WHERE upload_id = ?1 ORDER BY number")?
        .query_map([id], |r| {
            Ok(StoredPart {
                number: r.get(0)?,
                id: r.get(1)?,
            })
        })?
        .collect()
}

/// A row of [`UPLOAD_COLUMNS`], without its parts.
fn upload_from_row(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
    let sha: String = r.get(2)?;
    let sha256 = sha.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(UploadRow {
        id: r.get(0)?,
        token_id: r.get(1)?,
        sha256,
        length: count(r.get(3)?),
        name: r.get(4)?,
        path: r.get(5)?,
        mtime: r.get(6)?,
        client: r.get(7)?,
        key: r.get(8)?,
        multipart_id: r.get(9)?,
        hash_state: r.get(10)?,
        created: from_nanos(r.get(11)?),
        expires: from_nanos(r.get(12)?),
        offset: count(r.get(13)?),
        parts: Vec::new(),
        updated: from_nanos(r.get(14)?),
    })
}

/// A stored size or count as a figure (never below 0).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
