//! The SQLite side: a bulk load straight into the file `Index::open_sqlite`
//! created (one transaction, prepared statements, rows in upload order, the
//! secondary indexes dropped first and rebuilt from their own `CREATE INDEX`
//! text afterwards; the server's triggers fill the overview's summary
//! tables as rows go in), its size on disk, and `EXPLAIN QUERY PLAN` of the
//! queries.

use std::path::Path;
use std::time::Instant;

use asset_catalog_server::index::SqliteIndex;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::LoadTimes;
use crate::data::Catalog;
use crate::measure::{Call, Query};

/// Hashes per `IN (…)` of the SQLite backend's check.
const CHECK_CHUNK: usize = 500;

/// Load the catalog into the (empty, migrated) index at `path`.
pub fn bulk_load(path: &Path, catalog: &Catalog, order: &[u32]) -> anyhow::Result<LoadTimes> {
    let started = Instant::now();
    let mut conn = Connection::open(path)?;
    // Nothing else has the file open: no journal, no fsync, a 1 GiB cache.
    let mode: String = conn.query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode == "off",
        "cannot leave WAL mode for the load (journal_mode {mode})"
    );
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576;")?;
    let indexes = secondary_indexes(&conn)?;
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX \"{name}\""))?;
    }
    let tx = conn.transaction()?;
    {
        let mut asset = tx.prepare(
            "INSERT INTO assets (sha256, key, size, content_type, name, first_seen, last_seen, names) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut sighting = tx.prepare(
            "INSERT INTO sightings (sha256, client, path, name, mtime, seen_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for &i in order {
            let a = catalog.asset(i);
            asset.execute(params![
                a.sha256,
                a.key,
                a.size,
                a.content_type,
                a.name,
                a.first_seen,
                a.last_seen,
                a.names()
            ])?;
            for s in &a.sightings {
                sighting.execute(params![
                    a.sha256, s.client, s.path, s.name, s.mtime, s.seen_at
                ])?;
            }
        }
    }
    // The metadata jobs the server's trigger queued for every row: a
    // server's queue is drained by its workers, and PostgreSQL's load
    // queues none (its triggers are off while loading).
    tx.execute("DELETE FROM jobs", [])?;
    tx.commit()?;
    let rows_done = Instant::now();
    for (_, sql) in &indexes {
        conn.execute_batch(sql)?;
    }
    let indexes_done = Instant::now();
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode == "wal",
        "cannot return to WAL mode (journal_mode {mode})"
    );
    drop(conn);
    Ok(LoadTimes {
        rows_s: (rows_done - started).as_secs_f64(),
        indexes_s: (indexes_done - rows_done).as_secs_f64(),
        analyze_s: 0.0,
        total_s: started.elapsed().as_secs_f64(),
    })
}

/// `(name, CREATE INDEX …)` of every explicit index on assets and sightings.
fn secondary_indexes(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('assets', 'sightings') ORDER BY name",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// Remove what the insert load added (assets first seen at or after
/// `from`, and their sightings), so that later measurements see the catalog.
pub fn remove_since(path: &Path, from: i64) -> anyhow::Result<()> {
    let conn = Connection::open(path)?;
    // Their jobs first, in one statement: the trigger that deletes an
    // asset's jobs looks them up by hash, which no index of `jobs` leads with.
    conn.execute(
        "DELETE FROM jobs WHERE sha256 IN (SELECT sha256 FROM assets WHERE first_seen >= ?1)",
        [from],
    )?;
    conn.execute(
        "DELETE FROM sightings WHERE sha256 IN (SELECT sha256 FROM assets WHERE first_seen >= ?1)",
        [from],
    )?;
    conn.execute("DELETE FROM assets WHERE first_seen >= ?1", [from])?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

/// The index file with its `-wal` and `-shm`, bytes.
pub fn size_on_disk(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// `EXPLAIN QUERY PLAN` of each query, as the SQLite backend builds it.
pub fn plans(path: &Path, queries: &[Query]) -> anyhow::Result<Vec<String>> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    queries
        .iter()
        .map(|q| {
            let plans = statements(&q.call)
                .into_iter()
                .map(|(sql, params)| explain(&conn, &sql, params))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(plans.join("\n\n"))
        })
        .collect()
}

/// The statement (a long `IN` list shortened) and its query plan.
pub fn explain(conn: &Connection, sql: &str, params: Vec<Value>) -> anyhow::Result<String> {
    let rows = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
        .query_map(params_from_iter(params), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let marks = vec!["?"; CHECK_CHUNK].join(",");
    let shown = sql.replace(&marks, &format!("?, ?, … {CHECK_CHUNK} parameters"));
    Ok(format!("{shown}\n{}", render_plan(&rows)))
}

/// The plan rows `(id, parent, detail)` as an indented tree.
fn render_plan(rows: &[(i64, i64, String)]) -> String {
    let mut depth = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (id, parent, detail) in rows {
        let d = depth.get(parent).map_or(0, |d| d + 1);
        depth.insert(*id, d);
        out.push(format!("{}{detail}", "  ".repeat(d)));
    }
    out.join("\n")
}

/// The statements the SQLite backend runs for `call` (the check: one of
/// its chunks of 500; a name search: both stages), from the server itself.
fn statements(call: &Call) -> Vec<(String, Vec<Value>)> {
    match call {
        Call::Missing => {
            let marks = vec!["?"; CHECK_CHUNK].join(",");
            let params = (0..CHECK_CHUNK)
                .map(|i| Value::Text(format!("{i:064x}")))
                .collect();
            vec![(
                format!("SELECT sha256 FROM assets WHERE sha256 IN ({marks})"),
                params,
            )]
        }
        Call::List(filter) => SqliteIndex::list_statements(filter),
        // As `server/src/index/sqlite/sessions.rs` runs them.
        Call::Overview => {
            let (from, to) = (0, i64::from(crate::overview::DAYS) - 1);
            [
                "SELECT coalesce(sum(assets), 0), coalesce(sum(bytes), 0) FROM days",
                "SELECT count(*) FROM assets WHERE integrity IN ('corrupt', 'missing')",
                "SELECT day, assets, bytes FROM days WHERE day BETWEEN ?1 AND ?2 AND assets > 0 ORDER BY day",
                "SELECT client, sightings, last_seen FROM clients ORDER BY last_seen DESC, client",
            ]
            .into_iter()
            .map(|sql| {
                let params = if sql.contains("?1") {
                    vec![Value::Integer(from), Value::Integer(to)]
                } else {
                    Vec::new()
                };
                (sql.to_owned(), params)
            })
            .collect()
        }
    }
}
