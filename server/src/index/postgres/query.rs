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
use crate::index::listing::{Dialect, ListQuery, Param};
use crate::index::types::{
    JobColumns, ListFilter, SightingCursor, SightingPage, asset_page, from_nanos, sighting_page,
};

pub(super) const ASSET_COLUMNS: &str = "a.sha256, a.key, a.size, a.content_type, a.name, a.first_seen, a.last_seen, \
     (SELECT count(*) FROM sightings s WHERE s.sha256 = a.sha256), \
     a.media::text, a.thumbnail, a.integrity, a.verified_at";

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
        let query = ListQuery::new(&filter, DIALECT);
        let first = query.first(ASSET_COLUMNS);
        let mut items = list_rows(&client, &first, query.params())
            .await
            .map_err(|e| self.fail(e))?;
        if !query.complete(items.len()) {
            let (sql, params) = query.second(ASSET_COLUMNS);
            items = list_rows(&client, &sql, &params)
                .await
                .map_err(|e| self.fail(e))?;
        }
        Ok(asset_page(items, filter.limit))
    }
}

/// PostgreSQL's listing SQL. `OFFSET 0` keeps the candidates a subquery of
/// their own: planned with the outer `LIMIT`, the planner may walk
/// `assets_by_first_seen` instead of asking the trigram index (it did for a
/// name it thought frequent, 284 ms in bench B8).
const DIALECT: Dialect = Dialect {
    prefix: '$',
    like: "ILIKE",
    candidates: |p| format!("SELECT * FROM assets WHERE names ILIKE {p} ESCAPE '\\' OFFSET 0"),
    escaped: true,
};

async fn list_rows(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &[Param],
) -> Result<Vec<Asset>, PgFail> {
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| -> &(dyn ToSql + Sync) {
            match p {
                Param::Int(n) => n,
                Param::Text(t) => t,
            }
        })
        .collect();
    let rows = client.query(sql, &refs).await?;
    rows.iter().map(asset_from_row).collect()
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
    let jobs = JobColumns {
        media: r.get(8),
        thumbnail: r.get(9),
        integrity: r.get(10),
        verified_at: r.get(11),
    }
    .decode();
    Ok(Asset {
        sha256,
        key: r.get(1),
        size: u64::try_from(r.get::<_, i64>(2)).unwrap_or_default(),
        content_type: r.get(3),
        name: r.get(4),
        first_seen: from_nanos(r.get(5)),
        last_seen: from_nanos(r.get(6)),
        sighting_count: u64::try_from(r.get::<_, i64>(7)).unwrap_or_default(),
        media: jobs.media,
        thumbnail: jobs.thumbnail,
        integrity: jobs.integrity,
        verified_at: jobs.verified_at,
    })
}
