//! Read queries: one asset, its sightings, which hashes are missing, and the
//! filtered, cursor-paginated listing (newest first, keyed on
//! `(first_seen, sha256)` so pages are stable while uploads continue).

use asset_catalog_proto::{Asset, AssetDetail, AssetPage, Sha256Hex, Sighting};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SqliteIndex;
use crate::index::IndexError;
use crate::index::listing::{Dialect, ListQuery, Param};
use crate::index::types::{
    JobColumns, ListFilter, SightingCursor, SightingPage, asset_page, from_nanos, sighting_page,
};

/// Hashes per `IN (…)` query.
const IN_CHUNK: usize = 500;

const ASSET_COLUMNS: &str = "a.sha256, a.key, a.size, a.content_type, a.name, a.first_seen, a.last_seen, \
     (SELECT count(*) FROM sightings s WHERE s.sha256 = a.sha256), \
     a.media, a.thumbnail, a.integrity, a.verified_at";

impl SqliteIndex {
    /// One asset.
    pub async fn get(&self, sha: &Sha256Hex) -> Result<Option<Asset>, IndexError> {
        let sha = sha.clone();
        self.read(move |conn| get_asset(conn, &sha)).await
    }

    /// One asset with one page of its sightings, most recent first.
    pub async fn detail(
        &self,
        sha: &Sha256Hex,
        page: SightingPage,
    ) -> Result<Option<AssetDetail>, IndexError> {
        let sha = sha.clone();
        self.read(move |conn| {
            let Some(asset) = get_asset(conn, &sha)? else {
                return Ok(None);
            };
            let (sightings, next) = sightings_page(conn, &sha, &page)?;
            let uploaded_by = conn
                .prepare_cached("SELECT uploaded_by FROM assets WHERE sha256 = ?")?
                .query_row([sha.as_str()], |r| r.get(0))?;
            Ok(Some(AssetDetail {
                asset,
                sightings,
                sightings_cursor: next.map(|c| c.encode()),
                uploaded_by,
            }))
        })
        .await
    }

    /// Who deleted `sha` and when, oldest first (the `deletions` audit rows).
    pub async fn deletions(
        &self,
        sha: &Sha256Hex,
    ) -> Result<Vec<(Option<String>, OffsetDateTime)>, IndexError> {
        let sha = sha.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT token, deleted_at FROM deletions WHERE sha256 = ? ORDER BY deleted_at",
            )?
            .query_map([sha.as_str()], |r| Ok((r.get(0)?, from_nanos(r.get(1)?))))?
            .collect()
        })
        .await
    }

    /// The hashes of `wanted` the index does not have, in request order, without duplicates.
    pub async fn missing(&self, wanted: Vec<Sha256Hex>) -> Result<Vec<Sha256Hex>, IndexError> {
        self.read(move |conn| {
            let mut present = std::collections::HashSet::new();
            for chunk in wanted.chunks(IN_CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!("SELECT sha256 FROM assets WHERE sha256 IN ({marks})");
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt
                    .query_map(params_from_iter(chunk.iter().map(|h| h.as_str())), |r| {
                        r.get::<_, String>(0)
                    })?;
                for row in rows {
                    present.insert(row?);
                }
            }
            let mut seen = std::collections::HashSet::new();
            Ok(wanted
                .into_iter()
                .filter(|h| !present.contains(h.as_str()) && seen.insert(h.clone()))
                .collect())
        })
        .await
    }

    /// One page of assets matching `filter`.
    pub async fn list(&self, filter: ListFilter) -> Result<AssetPage, IndexError> {
        self.read(move |conn| list_page(conn, &filter)).await
    }

    /// The statements `list` may run for `filter`, in order, with their
    /// parameters: for `EXPLAIN QUERY PLAN` in benchmarks and diagnostics.
    pub fn list_statements(filter: &ListFilter) -> Vec<(String, Vec<Value>)> {
        let query = ListQuery::new(filter, DIALECT);
        let mut out = vec![(query.first(ASSET_COLUMNS), values(query.params()))];
        if !query.complete(0) {
            let (sql, params) = query.second(ASSET_COLUMNS);
            out.push((sql, values(&params)));
        }
        out
    }
}

/// SQLite's listing SQL: FTS5's trigram `LIKE` takes no `ESCAPE`, so it gets
/// the pattern as typed (a superset) and the exact test runs on its rows.
const DIALECT: Dialect = Dialect {
    prefix: '?',
    like: "LIKE",
    candidates: |p| {
        format!(
            "SELECT * FROM assets WHERE rowid IN \
             (SELECT rowid FROM assets_names WHERE assets_names.names LIKE {p})"
        )
    },
    escaped: false,
};

fn list_page(conn: &Connection, filter: &ListFilter) -> rusqlite::Result<AssetPage> {
    let query = ListQuery::new(filter, DIALECT);
    let mut items = list_rows(conn, &query.first(ASSET_COLUMNS), query.params())?;
    if !query.complete(items.len()) {
        let (sql, params) = query.second(ASSET_COLUMNS);
        items = list_rows(conn, &sql, &params)?;
    }
    Ok(asset_page(items, filter.limit))
}

fn list_rows(conn: &Connection, sql: &str, params: &[Param]) -> rusqlite::Result<Vec<Asset>> {
    conn.prepare_cached(sql)?
        .query_map(params_from_iter(values(params)), asset_from_row)?
        .collect()
}

fn values(params: &[Param]) -> Vec<Value> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(n) => Value::Integer(*n),
            Param::Text(t) => Value::Text(t.clone()),
        })
        .collect()
}

pub(super) fn get_asset(conn: &Connection, sha: &Sha256Hex) -> rusqlite::Result<Option<Asset>> {
    let sql = format!("SELECT {ASSET_COLUMNS} FROM assets a WHERE a.sha256 = ?");
    conn.prepare_cached(&sql)?
        .query_row([sha.as_str()], asset_from_row)
        .optional()
}

/// Every sighting of `sha` (for tools: bounded by the sighting cap).
fn sightings_of(conn: &Connection, sha: &Sha256Hex) -> rusqlite::Result<Vec<Sighting>> {
    let all = SightingPage {
        limit: usize::MAX >> 1,
        after: None,
    };
    sightings_page(conn, sha, &all).map(|(page, _)| page)
}

/// One page of sightings and the cursor of the next, if any.
fn sightings_page(
    conn: &Connection,
    sha: &Sha256Hex,
    page: &SightingPage,
) -> rusqlite::Result<(Vec<Sighting>, Option<SightingCursor>)> {
    let (seen, client, path) = page
        .after
        .as_ref()
        .map_or((i64::MAX, "", ""), |c| (c.0, c.1.as_str(), c.2.as_str()));
    let mut stmt = conn.prepare_cached(
        "SELECT client, path, name, mtime, seen_at, token FROM sightings \
         WHERE sha256 = ?1 AND (seen_at < ?2 OR (seen_at = ?2 AND (client, path) > (?3, ?4))) \
         ORDER BY seen_at DESC, client, path LIMIT ?5",
    )?;
    let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            rusqlite::params![sha.as_str(), seen, client, path, limit],
            |r| {
                let mtime: Option<String> = r.get(3)?;
                Ok(Sighting {
                    client: r.get(0)?,
                    path: r.get(1)?,
                    name: r.get(2)?,
                    mtime: mtime.and_then(|m| OffsetDateTime::parse(&m, &Rfc3339).ok()),
                    seen_at: from_nanos(r.get(4)?),
                    token: r.get(5)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(sighting_page(rows, page.limit))
}

fn asset_from_row(r: &Row<'_>) -> rusqlite::Result<Asset> {
    let sha: String = r.get(0)?;
    let sha256 = sha.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let jobs = JobColumns {
        media: r.get(8)?,
        thumbnail: r.get(9)?,
        integrity: r.get(10)?,
        verified_at: r.get(11)?,
    }
    .decode();
    Ok(Asset {
        sha256,
        key: r.get(1)?,
        size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or_default(),
        content_type: r.get(3)?,
        name: r.get(4)?,
        first_seen: from_nanos(r.get(5)?),
        last_seen: from_nanos(r.get(6)?),
        sighting_count: u64::try_from(r.get::<_, i64>(7)?).unwrap_or_default(),
        media: jobs.media,
        thumbnail: jobs.thumbnail,
        integrity: jobs.integrity,
        verified_at: jobs.verified_at,
    })
}

/// Number of assets.
pub(super) fn count_assets(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM assets", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// Call `f` with every asset and its sightings, oldest first.
pub(super) fn each_detail<E>(
    conn: &Connection,
    mut f: impl FnMut(AssetDetail) -> Result<(), E>,
) -> rusqlite::Result<Result<(), E>> {
    let sql = format!("SELECT {ASSET_COLUMNS} FROM assets a ORDER BY a.first_seen, a.sha256");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let asset = asset_from_row(row)?;
        let sightings = sightings_of(conn, &asset.sha256)?;
        if let Err(e) = f(AssetDetail {
            asset,
            sightings,
            sightings_cursor: None,
            uploaded_by: None,
        }) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}
