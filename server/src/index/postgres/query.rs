//! Read queries, as in the SQLite backend: one asset, its sightings, which
//! hashes are missing (one `= ANY($1)` round trip per batch), and the
//! filtered, cursor-paginated listing keyed on `(first_seen, sha256)`.

use asset_catalog_proto::{Asset, AssetDetail, AssetPage, Sha256Hex, Sighting};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgFail, PgIndex};
use crate::index::IndexError;
use crate::index::types::{
    ListFilter, SightingCursor, SightingPage, asset_page, escape_like, from_nanos, list_sql,
    sighting_page, to_nanos,
};

pub(super) const ASSET_COLUMNS: &str = "a.sha256, a.key, a.size, a.content_type, a.name, a.first_seen, a.last_seen, \
     (SELECT count(*) FROM sightings s WHERE s.sha256 = a.sha256)";

/// One query parameter of a dynamically built statement.
type Param = Box<dyn ToSql + Sync + Send>;

impl PgIndex {
    /// One asset.
    pub async fn get(&self, sha: &Sha256Hex) -> Result<Option<Asset>, IndexError> {
        let client = self.client().await?;
        get_asset(&client, sha).await.map_err(|e| self.fail(e))
    }

    /// One asset with one page of its sightings, most recent first.
    pub async fn detail(
        &self,
        sha: &Sha256Hex,
        page: SightingPage,
    ) -> Result<Option<AssetDetail>, IndexError> {
        let mut client = self.client().await?;
        let run = async {
            let tx: deadpool_postgres::Transaction<'_> = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let Some(asset) = get_asset(&tx, sha).await? else {
                return Ok(None);
            };
            let (sightings, next) = sightings_page(&tx, sha, &page).await?;
            let uploaded_by: Option<String> = tx
                .query_one(
                    "SELECT uploaded_by FROM assets WHERE sha256 = $1",
                    &[&sha.as_str()],
                )
                .await?
                .get(0);
            tx.commit().await?;
            Ok::<_, PgFail>(Some(AssetDetail {
                asset,
                sightings,
                sightings_cursor: next.map(|c| c.encode()),
                uploaded_by,
            }))
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Who deleted `sha` and when, oldest first.
    pub async fn deletions(
        &self,
        sha: &Sha256Hex,
    ) -> Result<Vec<(Option<String>, OffsetDateTime)>, IndexError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT token, deleted_at FROM deletions WHERE sha256 = $1 ORDER BY deleted_at",
                &[&sha.as_str()],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), from_nanos(r.get(1))))
            .collect())
    }

    /// The hashes of `wanted` the index does not have, in request order, without duplicates.
    pub async fn missing(&self, wanted: Vec<Sha256Hex>) -> Result<Vec<Sha256Hex>, IndexError> {
        let client = self.client().await?;
        let texts: Vec<&str> = wanted.iter().map(Sha256Hex::as_str).collect();
        let rows = client
            .query(
                "SELECT sha256 FROM assets WHERE sha256 = ANY($1)",
                &[&texts],
            )
            .await
            .map_err(|e| self.fail(e))?;
        let present: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        let mut seen = std::collections::HashSet::new();
        Ok(wanted
            .into_iter()
            .filter(|h| !present.contains(h.as_str()) && seen.insert(h.clone()))
            .collect())
    }

    /// One page of assets matching `filter`.
    pub async fn list(&self, filter: ListFilter) -> Result<AssetPage, IndexError> {
        let client = self.client().await?;
        let (clauses, params) = where_clauses(&filter);
        let sql = list_sql(ASSET_COLUMNS, &clauses, filter.limit);
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&sql, &refs).await.map_err(|e| self.fail(e))?;
        let items = rows
            .iter()
            .map(asset_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.fail(e))?;
        Ok(asset_page(items, filter.limit))
    }
}

fn where_clauses(filter: &ListFilter) -> (Vec<String>, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let next = |params: &mut Vec<Param>, value: Param| {
        params.push(value);
        format!("${}", params.len())
    };
    if let Some(cursor) = &filter.cursor {
        let at = next(&mut params, Box::new(cursor.first_seen));
        let sha = next(&mut params, Box::new(cursor.sha256.to_string()));
        clauses.push(format!("(a.first_seen, a.sha256) < ({at}, {sha})"));
    }
    if let Some(name) = &filter.name {
        let pattern = next(&mut params, Box::new(format!("%{}%", escape_like(name))));
        clauses.push(format!(
            "(a.name ILIKE {pattern} ESCAPE '\\' OR EXISTS (SELECT 1 FROM sightings s \
             WHERE s.sha256 = a.sha256 AND s.name ILIKE {pattern} ESCAPE '\\'))"
        ));
    }
    if let Some(ct) = &filter.content_type {
        if ct.ends_with('/') {
            let prefix = next(&mut params, Box::new(format!("{}%", escape_like(ct))));
            clauses.push(format!("a.content_type LIKE {prefix} ESCAPE '\\'"));
        } else {
            let exact = next(&mut params, Box::new(ct.clone()));
            let with = next(&mut params, Box::new(format!("{};%", escape_like(ct))));
            clauses.push(format!(
                "(a.content_type = {exact} OR a.content_type LIKE {with} ESCAPE '\\')"
            ));
        }
    }
    if let Some(client) = &filter.client {
        let c = next(&mut params, Box::new(client.clone()));
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM sightings s WHERE s.sha256 = a.sha256 AND s.client = {c})"
        ));
    }
    if let Some(since) = filter.since {
        let at = next(&mut params, Box::new(to_nanos(since)));
        clauses.push(format!("a.first_seen >= {at}"));
    }
    if let Some(until) = filter.until {
        let at = next(&mut params, Box::new(to_nanos(until)));
        clauses.push(format!("a.first_seen < {at}"));
    }
    (clauses, params)
}

pub(super) async fn get_asset<C: deadpool_postgres::GenericClient>(
    client: &C,
    sha: &Sha256Hex,
) -> Result<Option<Asset>, PgFail> {
    let sql = format!("SELECT {ASSET_COLUMNS} FROM assets a WHERE a.sha256 = $1");
    let row = client
        .query_opt(&client.prepare_cached(&sql).await?, &[&sha.as_str()])
        .await?;
    row.as_ref().map(asset_from_row).transpose()
}

/// One page of sightings and the cursor of the next, if any.
pub(super) async fn sightings_page<C: deadpool_postgres::GenericClient>(
    client: &C,
    sha: &Sha256Hex,
    page: &SightingPage,
) -> Result<(Vec<Sighting>, Option<SightingCursor>), PgFail> {
    let (seen, c, p) = page
        .after
        .as_ref()
        .map_or((i64::MAX, "", ""), |c| (c.0, c.1.as_str(), c.2.as_str()));
    let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &client
                .prepare_cached(
                    "SELECT client, path, name, mtime, seen_at, token FROM sightings \
             WHERE sha256 = $1 AND (seen_at < $2 OR (seen_at = $2 AND (client, path) > ($3, $4))) \
             ORDER BY seen_at DESC, client, path LIMIT $5",
                )
                .await?,
            &[&sha.as_str(), &seen, &c, &p, &limit],
        )
        .await?;
    let sightings: Vec<Sighting> = rows.iter().map(sighting_from_row).collect();
    Ok(sighting_page(sightings, page.limit))
}

pub(super) fn sighting_from_row(r: &Row) -> Sighting {
    let mtime: Option<String> = r.get(3);
    Sighting {
        client: r.get(0),
        path: r.get(1),
        name: r.get(2),
        mtime: mtime.and_then(|m| OffsetDateTime::parse(&m, &Rfc3339).ok()),
        seen_at: from_nanos(r.get(4)),
        token: r.get(5),
    }
}

pub(super) fn asset_from_row(r: &Row) -> Result<Asset, PgFail> {
    let sha: String = r.get(0);
    let sha256 = sha
        .parse()
        .map_err(|e| PgFail::Bad(format!("assets.sha256 {sha:?}: {e}")))?;
    Ok(Asset {
        sha256,
        key: r.get(1),
        size: u64::try_from(r.get::<_, i64>(2)).unwrap_or_default(),
        content_type: r.get(3),
        name: r.get(4),
        first_seen: from_nanos(r.get(5)),
        last_seen: from_nanos(r.get(6)),
        sighting_count: u64::try_from(r.get::<_, i64>(7)).unwrap_or_default(),
    })
}
