//! index-bench: benchmark B8 of bench/run.sh. The metadata index at N assets
//! (default 1,000,000) and 3·N sightings, SQLite and PostgreSQL in one run on
//! one machine, timed through `asset_catalog_server::index::Index`, the
//! interface the server calls: the check of 10,000 hashes, listing pages
//! (first, deep in the cursor, by name, type and client), the web UI's
//! overview (and, for comparison, the scans its summary tables replace), and
//! the sustained insert rate of 16 concurrent uploads. Loading is bulk (not
//! measured as the server would do it) and reported apart, with the size on
//! disk.
//!
//! Writes a JSON report (`--json`) for the harness and a table on stdout;
//! progress goes to stderr.

mod data;
mod fixes;
mod measure;
mod overview;
mod pg;
mod sqlite;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use asset_catalog_server::index::Index;
use clap::{Parser, ValueEnum};
use serde::Serialize;

use data::Catalog;
use measure::{InsertRate, Query, Timing};

/// Benchmark B8: the index at N assets, SQLite vs PostgreSQL.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Assets in the index (sightings: 3 per asset on average).
    #[arg(long, default_value_t = 1_000_000)]
    assets: u32,
    /// Timed repetitions of each query, after one warm-up.
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// How long the insert load runs.
    #[arg(long, default_value_t = 20.0)]
    insert_seconds: f64,
    /// Concurrent uploaders in the insert load.
    #[arg(long, default_value_t = 16)]
    insert_tasks: usize,
    /// Backends to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<Backend>,
    /// Where the SQLite file goes (default: $TMPDIR); PostgreSQL's cluster
    /// goes where testkit puts it ($TMPDIR).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Write the full report (every sample, every plan) here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Afterwards, time prototypes of the proposed fixes (name search,
    /// check): rewritten SQL and settings, not the server's; see src/fixes.rs.
    #[arg(long)]
    fixes: bool,
    /// Keep the loaded SQLite index (as the server would open it) at this
    /// path instead of deleting it: bench B11 serves it to a browser.
    #[arg(long, value_name = "PATH")]
    keep_sqlite: Option<PathBuf>,
    /// Seed of the generated catalog.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// How long the bulk load took, by phase, seconds.
#[derive(Debug, Clone, Serialize)]
pub struct LoadTimes {
    /// Generating and inserting the rows.
    pub rows_s: f64,
    /// Building the secondary indexes.
    pub indexes_s: f64,
    /// `VACUUM (ANALYZE)` (PostgreSQL).
    pub analyze_s: f64,
    pub total_s: f64,
}

/// Everything measured on one backend.
#[derive(Debug, Serialize)]
struct BackendReport {
    backend: &'static str,
    load: LoadTimes,
    /// `(what, bytes)`, the whole index first.
    sizes: Vec<(String, u64)>,
    settings: Vec<String>,
    /// `EXPLAIN QUERY PLAN` of the backend's statements (SQLite), or
    /// `auto_explain` of the statements the server ran (PostgreSQL).
    plan_method: &'static str,
    queries: Vec<Timing>,
    /// The overview's figures by scanning `assets` and `sightings` (what
    /// the summary tables replace; plain SQL, not the server's).
    overview_scans: Vec<Timing>,
    insert: InsertRate,
    /// With `--fixes`: the prototypes of the proposed fixes.
    prototypes: Vec<fixes::Variant>,
}

#[derive(Debug, Serialize)]
struct Report {
    assets: u32,
    sightings: u64,
    reps: usize,
    deep_position: u32,
    backends: Vec<BackendReport>,
    /// Queries whose results differ between the backends (should be none).
    mismatches: Vec<String>,
}

/// What every backend gets: the catalog, its load order, the queries.
struct Plan<'a> {
    args: &'a Args,
    catalog: Catalog,
    order: Vec<u32>,
    queries: Vec<Query>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.assets >= 1000, "--assets must be at least 1000");
    let started = Instant::now();
    let catalog = Catalog::new(args.assets, args.seed);
    let order = catalog.upload_order();
    let sightings = catalog.sightings();
    let deep_position = args.assets / 10 * 9;
    let cursor = measure::deep_cursor(&catalog, &order, deep_position as usize - 1);
    let queries = measure::queries(cursor, deep_position);
    progress(&format!(
        "catalog: {} assets, {sightings} sightings",
        args.assets
    ));
    let plan = Plan {
        args: &args,
        catalog,
        order,
        queries,
    };
    let mut backends = Vec::new();
    for backend in &args.backends {
        backends.push(match backend {
            Backend::Sqlite => run_sqlite(&plan).await.context("SQLite")?,
            Backend::Postgres => run_postgres(&plan).await.context("PostgreSQL")?,
        });
    }
    let report = Report {
        assets: args.assets,
        sightings,
        reps: args.reps,
        deep_position,
        mismatches: mismatches(&backends),
        backends,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    print_table(&report);
    progress(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(())
}

async fn run_sqlite(plan: &Plan<'_>) -> anyhow::Result<BackendReport> {
    let parent = plan.args.workdir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("index-bench-")
        .tempdir_in(&parent)?;
    let path = dir.path().join("index.sqlite3");
    drop(Index::open_sqlite(&path).await?);
    progress("SQLite: bulk load");
    let load = tokio::task::spawn_blocking({
        let (path, catalog, order) = (path.clone(), plan.catalog, plan.order.clone());
        move || sqlite::bulk_load(&path, &catalog, &order)
    })
    .await??;
    progress(&format!("SQLite: loaded in {:.1} s", load.total_s));
    let index = Index::open_sqlite(&path).await?;
    let sizes = vec![(
        "index file (with -wal, -shm)".into(),
        sqlite::size_on_disk(&path),
    )];
    let mut queries = time_all(&index, plan, "SQLite").await?;
    for (timing, text) in queries.iter_mut().zip(sqlite::plans(&path, &plan.queries)?) {
        timing.plan = text;
    }
    let overview_scans = tokio::task::spawn_blocking({
        let (path, now) = (path.clone(), plan.catalog.now);
        move || overview::sqlite_scans(&path, now)
    })
    .await??;
    report_scans("SQLite", &overview_scans);
    let insert = insert(&index, plan, "sqlite").await?;
    drop(index);
    let from = plan.catalog.now;
    let path2 = path.clone();
    tokio::task::spawn_blocking(move || sqlite::remove_since(&path2, from)).await??;
    let prototypes = if plan.args.fixes {
        progress("SQLite: prototypes of the proposed fixes");
        let (path, queries, reps) = (path.clone(), plan.queries.clone(), plan.args.reps);
        let catalog = plan.catalog;
        tokio::task::spawn_blocking(move || fixes::sqlite(&path, &queries, &catalog, reps))
            .await??
    } else {
        Vec::new()
    };
    if let Some(keep) = &plan.args.keep_sqlite {
        keep_file(&path, keep)?;
    }
    Ok(BackendReport {
        backend: "SQLite",
        load,
        sizes,
        settings: vec![
            format!("SQLite {} (rusqlite, bundled)", rusqlite::version()),
            "journal_mode = WAL, synchronous = FULL (the server's)".into(),
        ],
        plan_method: "EXPLAIN QUERY PLAN",
        queries,
        overview_scans,
        insert,
        prototypes,
    })
}

/// Move the SQLite file (and its `-wal`/`-shm`, if any are left) to `keep`.
fn keep_file(path: &std::path::Path, keep: &std::path::Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", keep.display()));
            std::fs::rename(&from, &to)
                .or_else(|_| std::fs::copy(&from, &to).map(drop))
                .with_context(|| format!("keep {} as {}", from.display(), to.display()))?;
        }
    }
    progress(&format!("SQLite: index kept at {}", keep.display()));
    Ok(())
}

async fn run_postgres(plan: &Plan<'_>) -> anyhow::Result<BackendReport> {
    progress("PostgreSQL: starting a private cluster (testkit)");
    let pg = pg::Pg::start().await?;
    drop(pg.open_index(1).await?);
    progress("PostgreSQL: bulk load (COPY)");
    let load = pg.bulk_load(&plan.catalog, &plan.order).await?;
    progress(&format!("PostgreSQL: loaded in {:.1} s", load.total_s));
    let sizes = pg.sizes().await?;
    // The server's default pool (`[index] pool_size`).
    let index = pg.open_index(16).await?;
    let mut queries = time_all(&index, plan, "PostgreSQL").await?;
    pg.auto_explain(true).await?;
    let explained = pg.open_index(1).await?;
    let mut rng: rand::rngs::SmallRng = rand::SeedableRng::seed_from_u64(0xe7);
    for (timing, query) in queries.iter_mut().zip(&plan.queries) {
        let mark = pg.log_mark();
        measure::run_once(&explained, query, &plan.catalog, &mut rng).await?;
        timing.plan = pg.plans_since(mark);
    }
    drop(explained);
    pg.auto_explain(false).await?;
    let overview_scans = overview::postgres_scans(&pg, plan.catalog.now).await?;
    report_scans("PostgreSQL", &overview_scans);
    let insert = insert(&index, plan, "postgres").await?;
    pg.remove_since(plan.catalog.now).await?;
    let settings = pg.settings().await?;
    let prototypes = if plan.args.fixes {
        progress("PostgreSQL: prototypes of the proposed fixes");
        let (queries, reps) = (&plan.queries, plan.args.reps);
        fixes::postgres_check(&pg, index, queries, &plan.catalog, reps).await?
    } else {
        Vec::new()
    };
    Ok(BackendReport {
        backend: "PostgreSQL",
        load,
        sizes,
        settings,
        plan_method: "auto_explain (ANALYZE, BUFFERS) of the server's statements",
        queries,
        overview_scans,
        insert,
        prototypes,
    })
}

async fn time_all(index: &Index, plan: &Plan<'_>, name: &str) -> anyhow::Result<Vec<Timing>> {
    let mut out = Vec::new();
    for query in &plan.queries {
        let t = measure::time_query(index, query, &plan.catalog, plan.args.reps).await?;
        progress(&format!(
            "{name}: {}: p50 {:.2} ms, p95 {:.2} ms ({} rows)",
            t.label, t.p50_ms, t.p95_ms, t.rows
        ));
        out.push(t);
    }
    Ok(out)
}

fn report_scans(name: &str, scans: &[Timing]) {
    for t in scans {
        progress(&format!(
            "{name}: without summary tables, {}: p50 {:.2} ms ({} rows)",
            t.label, t.p50_ms, t.rows
        ));
    }
}

async fn insert(index: &Index, plan: &Plan<'_>, tag: &str) -> anyhow::Result<InsertRate> {
    let (tasks, seconds) = (plan.args.insert_tasks, plan.args.insert_seconds);
    progress(&format!(
        "{tag}: inserting with {tasks} tasks for {seconds} s"
    ));
    let rate = measure::insert_rate(index, tasks, seconds, tag).await?;
    progress(&format!("{tag}: {:.0} assets/s", rate.per_sec));
    Ok(rate)
}

/// Queries whose row count or first item differ between backends.
fn mismatches(backends: &[BackendReport]) -> Vec<String> {
    let Some((first, rest)) = backends.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for other in rest {
        for (a, b) in first.queries.iter().zip(&other.queries) {
            if a.rows != b.rows || a.first != b.first {
                out.push(format!(
                    "{}: {} gave {} rows (first {:?}), {} gave {} rows (first {:?})",
                    a.label, first.backend, a.rows, a.first, other.backend, b.rows, b.first
                ));
            }
        }
    }
    out
}

fn print_table(report: &Report) {
    println!(
        "B8: {} assets, {} sightings; median / p95 of {} runs, ms",
        report.assets, report.sightings, report.reps
    );
    for b in &report.backends {
        println!(
            "\n{} (load {:.1} s, {:.0} MiB on disk)",
            b.backend,
            b.load.total_s,
            b.sizes.first().map_or(0.0, |s| s.1 as f64 / 1048576.0)
        );
        for q in &b.queries {
            let verdict = if q.p50_ms <= q.goal_ms {
                "met"
            } else {
                "MISSED"
            };
            println!(
                "  {:<44} {:>9.2} {:>9.2}   goal {:>5} ms  {verdict}",
                q.label, q.p50_ms, q.p95_ms, q.goal_ms
            );
        }
        for q in &b.overview_scans {
            println!(
                "  overview without summary tables: {:<52} {:>9.2} {:>9.2}",
                q.label, q.p50_ms, q.p95_ms
            );
        }
        println!(
            "  {:<44} {:>9.0} assets/s (p95 latency {:.1} ms)",
            "insert", b.insert.per_sec, b.insert.p95_ms
        );
        for v in &b.prototypes {
            println!("  prototype: {}", v.what);
            for t in &v.timings {
                println!("    {:<42} {:>9.2} {:>9.2}", t.label, t.p50_ms, t.p95_ms);
            }
        }
    }
    for m in &report.mismatches {
        println!("MISMATCH: {m}");
    }
}

fn progress(msg: &str) {
    eprintln!(
        "[index-bench {}] {msg}",
        time::OffsetDateTime::now_utc().time()
    );
}
