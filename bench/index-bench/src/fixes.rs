//! Prototypes of the fixes B8 proposes, timed on the same data after the
//! server's own queries (`--fixes`). They run rewritten SQL or settings
//! directly, not through `Index` (the server does not have them yet): they
//! say what a fix would buy, they do not measure the server.
//!
//! Name search. The server's `name LIKE x OR EXISTS (… sightings.name LIKE
//! x)` walks `assets_by_first_seen` newest first and tests every row (and
//! its sightings) until 101 match: fast for a frequent name, a walk of most
//! of the table for a rare one.
//! - "candidates": look the name up in a trigram index over asset and
//!   sighting names, join the hits to assets, sort (SQLite: an FTS5 trigram
//!   table; PostgreSQL: the existing GIN indexes, `UNION`). Fast for a rare
//!   name, slow for a frequent one (every hit is joined and sorted).
//! - "one names column": every distinct name of an asset (its own and its
//!   sightings') in one column of `assets` with a trigram index. PostgreSQL's
//!   planner then picks the walk or the index by the estimated hits;
//!   SQLite's cannot estimate, so the query walks the newest 20,000 rows
//!   first and asks the FTS5 index only when that found fewer than 101.
//!
//! Check. SQLite: the server's statements on a reader with `mmap_size` set
//! (the reader's 2 MiB page cache is far smaller than the sha256 index).
//! PostgreSQL: the hashes in two halves on two connections at once (each
//! lookup is a B-tree descent on one core); a larger `shared_buffers`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};

use asset_catalog_server::index::Index;

use crate::data::Catalog;
use crate::measure::{Call, Query, Timing, check_hashes};
use crate::pg::Pg;
use crate::sqlite::COLUMNS;

const ORDER: &str = "ORDER BY a.first_seen DESC, a.sha256 DESC LIMIT 101";
/// Rows the two-stage SQLite search walks before it asks the index.
const WALK: usize = 20_000;
const MMAP: i64 = 1 << 30;

/// One prototype on one backend: what it is, its set-up cost, its timings.
#[derive(Debug, serde::Serialize)]
pub struct Variant {
    /// A few words, for a table.
    pub name: String,
    pub what: String,
    pub setup_s: f64,
    pub extra_bytes: u64,
    pub timings: Vec<Timing>,
}

/// The name searches among `queries`, with their pattern (`%name%`).
fn name_searches(queries: &[Query]) -> Vec<(&Query, String)> {
    queries
        .iter()
        .filter_map(|q| match &q.call {
            Call::List(f) => f.name.as_ref().map(|name| (q, format!("%{name}%"))),
            Call::Missing => None,
        })
        .collect()
}

/// Time `run` (rows, first hash) once as a warm-up and `reps` times.
fn time_sync(
    query: &Query,
    reps: usize,
    mut run: impl FnMut() -> anyhow::Result<(usize, Option<String>)>,
) -> anyhow::Result<Timing> {
    let mut samples = Vec::with_capacity(reps);
    let mut result = (0, None);
    for rep in 0..=reps {
        let t = Instant::now();
        result = run()?;
        if rep > 0 {
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(Timing::new(query, samples, result.0, result.1))
}

/// Every SQLite prototype, on the index file at `path` (changed: tables
/// and a column are added, so this runs last).
pub fn sqlite(
    path: &Path,
    queries: &[Query],
    catalog: &Catalog,
    reps: usize,
) -> anyhow::Result<Vec<Variant>> {
    Ok(vec![
        sqlite_check(path, queries, catalog, reps, false)?,
        sqlite_check(path, queries, catalog, reps, true)?,
        sqlite_candidates(path, queries, reps)?,
        sqlite_names_column(path, queries, reps)?,
    ])
}

/// The server's check statements (chunks of 500 in `IN (…)`) on a reader
/// of our own, with or without `mmap_size`.
fn sqlite_check(
    path: &Path,
    queries: &[Query],
    catalog: &Catalog,
    reps: usize,
    mmap: bool,
) -> anyhow::Result<Variant> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    if mmap {
        conn.pragma_update(None, "mmap_size", MMAP)?;
    }
    let mut rng = rand::SeedableRng::seed_from_u64(0xb8);
    let mut timings = Vec::new();
    for query in queries.iter().filter(|q| matches!(q.call, Call::Missing)) {
        timings.push(time_sync(query, reps, || {
            let wanted = check_hashes(catalog, &mut rng);
            let mut present = 0;
            for chunk in wanted.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!("SELECT sha256 FROM assets WHERE sha256 IN ({marks})");
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(params_from_iter(chunk.iter().map(|h| h.as_str())))?;
                while rows.next()?.is_some() {
                    present += 1;
                }
            }
            Ok((wanted.len() - present, None))
        })?);
    }
    let (name, what) = if mmap {
        (
            "reader with mmap_size = 1 GiB",
            "check: the server's statements on a reader with PRAGMA mmap_size = 1 GiB",
        )
    } else {
        (
            "reader as the server's (baseline)",
            "check: the server's statements on a reader opened as the server opens it",
        )
    };
    Ok(Variant {
        name: name.into(),
        what: what.into(),
        setup_s: 0.0,
        extra_bytes: 0,
        timings,
    })
}

/// Candidates from an FTS5 trigram table over asset and sighting names.
fn sqlite_candidates(path: &Path, queries: &[Query], reps: usize) -> anyhow::Result<Variant> {
    let (setup_s, extra_bytes) = sqlite_setup(
        path,
        "CREATE VIRTUAL TABLE bench_names USING fts5(name, sha256 UNINDEXED, tokenize = 'trigram');
         INSERT INTO bench_names (name, sha256)
             SELECT name, sha256 FROM assets UNION SELECT name, sha256 FROM sightings;",
    )?;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM assets a WHERE a.sha256 IN \
         (SELECT sha256 FROM bench_names WHERE name LIKE ?1) {ORDER}"
    );
    let mut timings = Vec::new();
    for (query, pattern) in name_searches(queries) {
        let mut stmt = conn.prepare(&sql)?;
        let mut timing = time_sync(query, reps, || page(&mut stmt, &pattern))?;
        timing.plan = crate::sqlite::explain(&conn, &sql, vec![Value::Text(pattern)])?;
        timings.push(timing);
    }
    Ok(Variant {
        name: "FTS5 candidates".into(),
        what: "name: candidates from an FTS5 trigram table of asset and sighting names".into(),
        setup_s,
        extra_bytes,
        timings,
    })
}

/// One names column, an FTS5 index over it, and the two-stage query.
fn sqlite_names_column(path: &Path, queries: &[Query], reps: usize) -> anyhow::Result<Variant> {
    let (setup_s, extra_bytes) = sqlite_setup(
        path,
        "ALTER TABLE assets ADD COLUMN bench_names TEXT;
         UPDATE assets AS a SET bench_names = (SELECT group_concat(n, char(10)) FROM
             (SELECT a.name AS n UNION SELECT s.name FROM sightings s WHERE s.sha256 = a.sha256));
         CREATE VIRTUAL TABLE bench_fts USING fts5(bench_names, content = 'assets',
             content_rowid = 'rowid', tokenize = 'trigram');
         INSERT INTO bench_fts (bench_fts) VALUES ('rebuild');",
    )?;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let walk = format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM assets ORDER BY first_seen DESC, sha256 DESC \
         LIMIT {WALK}) a WHERE a.bench_names LIKE ?1 {ORDER}"
    );
    let index = format!(
        "SELECT {COLUMNS} FROM assets a WHERE a.rowid IN \
         (SELECT rowid FROM bench_fts WHERE bench_names LIKE ?1) {ORDER}"
    );
    let mut timings = Vec::new();
    for (query, pattern) in name_searches(queries) {
        let (mut first, mut second) = (conn.prepare(&walk)?, conn.prepare(&index)?);
        let mut timing = time_sync(query, reps, || {
            let found = page(&mut first, &pattern)?;
            if found.0 >= 100 {
                Ok(found)
            } else {
                page(&mut second, &pattern)
            }
        })?;
        let plans = [&walk, &index]
            .map(|sql| crate::sqlite::explain(&conn, sql, vec![Value::Text(pattern.clone())]));
        timing.plan = format!(
            "{}\n\n{}",
            plans[0].as_deref().unwrap_or("?"),
            plans[1].as_deref().unwrap_or("?")
        );
        timings.push(timing);
    }
    Ok(Variant {
        name: "names column + FTS5, two-stage".into(),
        what: format!(
            "name: one names column per asset with an FTS5 trigram index; walk the newest \
             {WALK} rows first, the index only when they hold fewer than 101 hits"
        ),
        setup_s,
        extra_bytes,
        timings,
    })
}

/// Run `ddl` on the file; how long it took and how much the file grew.
fn sqlite_setup(path: &Path, ddl: &str) -> anyhow::Result<(f64, u64)> {
    let before = crate::sqlite::size_on_disk(path);
    let started = Instant::now();
    let conn = Connection::open(path)?;
    conn.execute_batch(ddl)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let setup_s = started.elapsed().as_secs_f64();
    drop(conn);
    Ok((
        setup_s,
        crate::sqlite::size_on_disk(path).saturating_sub(before),
    ))
}

/// A page: rows (at most 100) and the first hash.
fn page(
    stmt: &mut rusqlite::Statement<'_>,
    pattern: &str,
) -> anyhow::Result<(usize, Option<String>)> {
    let shas: Vec<String> = stmt
        .query_map([pattern], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((shas.len().min(100), shas.first().cloned()))
}

/// Every PostgreSQL prototype (the names column is added to the table).
pub async fn postgres(pg: &Pg, queries: &[Query], reps: usize) -> anyhow::Result<Vec<Variant>> {
    let client = pg.connect().await?;
    let union = format!(
        "SELECT {COLUMNS} FROM assets a WHERE a.sha256 IN \
         (SELECT sha256 FROM assets WHERE name ILIKE $1 \
          UNION SELECT sha256 FROM sightings WHERE name ILIKE $1) {ORDER}"
    );
    let candidates = Variant {
        name: "UNION of trigram candidates".into(),
        what: "name: candidates from the existing trigram indexes of both tables (UNION)".into(),
        setup_s: 0.0,
        extra_bytes: 0,
        timings: pg_time(&client, &union, queries, reps)
            .await
            .context("candidates (UNION)")?,
    };
    let before = pg_size(&client).await?;
    let started = Instant::now();
    client
        .batch_execute(
            "SET maintenance_work_mem = '512MB';
             ALTER TABLE assets ADD COLUMN bench_names TEXT;
             UPDATE assets a SET bench_names = (SELECT string_agg(n, E'\\n') FROM
                 (SELECT a.name AS n UNION SELECT s.name FROM sightings s WHERE s.sha256 = a.sha256) x);
             CREATE INDEX bench_names_trgm ON assets USING gin (bench_names gin_trgm_ops);",
        )
        .await
        .map_err(|e| anyhow::anyhow!("names column: {e:?}"))?;
    client.batch_execute("VACUUM (ANALYZE) assets").await?;
    let setup_s = started.elapsed().as_secs_f64();
    let extra_bytes = pg_size(&client).await?.saturating_sub(before);
    let column = format!("SELECT {COLUMNS} FROM assets a WHERE a.bench_names ILIKE $1 {ORDER}");
    let names_column = Variant {
        name: "names column + GIN trigram".into(),
        what: "name: one names column per asset with a GIN trigram index (the planner \
               chooses walk or index)"
            .into(),
        setup_s,
        extra_bytes,
        timings: pg_time(&client, &column, queries, reps)
            .await
            .context("names column")?,
    };
    Ok(vec![candidates, names_column])
}

/// The check two ways: as two halves on two pooled connections at once
/// (`Index::missing` twice, concurrently: what a split in `PgIndex::missing`
/// would do), then whole after a restart with `shared_buffers` = 1GB.
pub async fn postgres_check(
    pg: &Pg,
    index: Index,
    queries: &[Query],
    catalog: &Catalog,
    reps: usize,
) -> anyhow::Result<Vec<Variant>> {
    let mut rng = rand::SeedableRng::seed_from_u64(0xb8);
    let mut split = Vec::new();
    for query in queries.iter().filter(|q| matches!(q.call, Call::Missing)) {
        let mut samples = Vec::with_capacity(reps);
        let mut missing = 0;
        for rep in 0..=reps {
            let mut wanted = check_hashes(catalog, &mut rng);
            let other = wanted.split_off(wanted.len() / 2);
            let t = Instant::now();
            let (a, b) = tokio::try_join!(index.missing(wanted), index.missing(other))?;
            if rep > 0 {
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            missing = a.len() + b.len();
        }
        split.push(Timing::new(query, samples, missing, None));
    }
    drop(index);
    pg.restart_with("shared_buffers", "1GB").await?;
    let index = pg.open_index(16).await?;
    let mut buffers = Vec::new();
    for query in queries.iter().filter(|q| matches!(q.call, Call::Missing)) {
        buffers.push(crate::measure::time_query(&index, query, catalog, reps).await?);
    }
    Ok(vec![
        Variant {
            name: "two halves at once".into(),
            what: "check: Index::missing on each half of the hashes, both at once on two \
                   pooled connections"
                .into(),
            setup_s: 0.0,
            extra_bytes: 0,
            timings: split,
        },
        Variant {
            name: "shared_buffers = 1GB".into(),
            what: "check: through Index, PostgreSQL restarted with shared_buffers = 1GB".into(),
            setup_s: 0.0,
            extra_bytes: 0,
            timings: buffers,
        },
    ])
}

async fn pg_size(client: &tokio_postgres::Client) -> anyhow::Result<u64> {
    let row = client
        .query_one("SELECT pg_total_relation_size('assets')", &[])
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
}

/// Each name search with `sql` ($1 the pattern), and its plan.
async fn pg_time(
    client: &tokio_postgres::Client,
    sql: &str,
    queries: &[Query],
    reps: usize,
) -> anyhow::Result<Vec<Timing>> {
    let stmt = client
        .prepare(sql)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut timings = Vec::new();
    for (query, pattern) in name_searches(queries) {
        let mut samples = Vec::new();
        let mut result = (0, None);
        for rep in 0..=reps {
            let t = Instant::now();
            let rows = client.query(&stmt, &[&pattern]).await?;
            if rep > 0 {
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            result = (
                rows.len().min(100),
                rows.first().map(|r| r.get::<_, String>(0)),
            );
        }
        let mut timing = Timing::new(query, samples, result.0, result.1);
        let plan = client
            .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &[&pattern])
            .await?;
        let lines: Vec<String> = plan.iter().map(|r| r.get(0)).collect();
        timing.plan = format!("{sql}\n{}", lines.join("\n"));
        timings.push(timing);
    }
    Ok(timings)
}
