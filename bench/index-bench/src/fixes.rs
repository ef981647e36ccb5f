//! Prototypes of the fixes B8 proposes, timed on the same data after the
//! server's own queries (`--fixes`). They run rewritten SQL or settings
//! directly, not through `Index` (the server does not have them yet): they
//! say what a fix would buy, they do not measure the server.
//!
//! Check. SQLite: the server's statements on a reader with `mmap_size` set
//! (the reader's 2 MiB page cache is far smaller than the sha256 index).
//! PostgreSQL: the hashes in two halves on two connections at once (each
//! lookup is a B-tree descent on one core); a larger `shared_buffers`.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, params_from_iter};

use asset_catalog_server::index::Index;

use crate::data::Catalog;
use crate::measure::{Call, Query, Timing, check_hashes};
use crate::pg::Pg;

/// `mmap_size` of the SQLite check prototype.
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
