//! The web UI's overview (`Index::overview`, timed with the other queries
//! in `measure.rs`) and what it would cost without the summary tables the
//! server keeps for it (`days`, `clients`; see `server/src/index/sessions.rs`):
//! the same figures by scanning `assets` and `sightings`, timed here as
//! plain SQL on a connection of our own. These say why the tables exist;
//! they do not measure the server.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::measure::Timing;
use crate::pg::Pg;

/// Days of uploads the overview shows (the UI's default).
pub const DAYS: u32 = 30;
/// Timed repetitions of each scan (some take a second).
const REPS: usize = 5;
const DAY: i64 = 86_400_000_000_000;

/// One scan: what it replaces, and its SQL for SQLite and PostgreSQL
/// (`?1`/`$1`, `?2`/`$2`: the first day's start and the end of today).
struct Scan {
    id: &'static str,
    label: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const SCANS: [Scan; 4] = [
    Scan {
        id: "scan_totals",
        label: "count(*), sum(size) FROM assets",
        sqlite: "SELECT count(*), sum(size) FROM assets",
        postgres: "SELECT count(*), sum(size)::bigint FROM assets",
    },
    Scan {
        id: "scan_days",
        label: "30 days from assets_by_first_seen",
        sqlite: "SELECT first_seen / 86400000000000, count(*), sum(size) FROM assets \
                 WHERE first_seen >= ?1 AND first_seen < ?2 GROUP BY 1 ORDER BY 1",
        postgres: "SELECT first_seen / 86400000000000, count(*), sum(size)::bigint FROM assets \
                   WHERE first_seen >= $1 AND first_seen < $2 GROUP BY 1 ORDER BY 1",
    },
    Scan {
        id: "scan_clients",
        label: "GROUP BY client over all sightings",
        sqlite: "SELECT client, count(*), max(seen_at) FROM sightings GROUP BY client \
                 ORDER BY 3 DESC",
        postgres: "SELECT client, count(*), max(seen_at) FROM sightings GROUP BY client \
                   ORDER BY 3 DESC",
    },
    Scan {
        id: "scan_problems",
        label: "problems (assets_with_problems; also in the overview)",
        sqlite: "SELECT count(*) FROM assets WHERE integrity IN ('corrupt', 'missing')",
        postgres: "SELECT count(*) FROM assets WHERE integrity IN ('corrupt', 'missing')",
    },
];

/// Where the overview's days start and end: `DAYS` days up to `now`'s day.
pub fn window(now: i64) -> (i64, i64) {
    let today = now.div_euclid(DAY);
    ((today - i64::from(DAYS) + 1) * DAY, (today + 1) * DAY)
}

/// The scans on the SQLite file at `path`, through a reader opened as the
/// server opens one (default page cache).
pub fn sqlite_scans(path: &Path, now: i64) -> anyhow::Result<Vec<Timing>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (from, to) = window(now);
    SCANS
        .iter()
        .map(|scan| {
            time(scan, || {
                let mut stmt = conn.prepare_cached(scan.sqlite)?;
                let count = stmt.parameter_count();
                let params: &[&dyn rusqlite::ToSql] = if count == 2 { &[&from, &to] } else { &[] };
                let mut rows = stmt.query(params)?;
                let mut n = 0;
                while rows.next()?.is_some() {
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect()
}

/// The scans on PostgreSQL, on a connection set as the server's (`jit = off`).
pub async fn postgres_scans(pg: &Pg, now: i64) -> anyhow::Result<Vec<Timing>> {
    let c = pg.connect().await?;
    c.batch_execute("SET jit = off").await?;
    let (from, to) = window(now);
    let mut out = Vec::new();
    for scan in &SCANS {
        let stmt = c.prepare(scan.postgres).await?;
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if stmt.params().len() == 2 {
            vec![&from, &to]
        } else {
            Vec::new()
        };
        let mut samples = Vec::with_capacity(REPS);
        let mut rows = 0;
        for rep in 0..=REPS {
            let t = Instant::now();
            rows = c.query(&stmt, &params).await?.len();
            if rep > 0 {
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        out.push(Timing::of(
            scan.id,
            scan.label,
            f64::NAN,
            samples,
            rows,
            None,
        ));
    }
    Ok(out)
}

fn time(scan: &Scan, mut run: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<Timing> {
    let mut samples = Vec::with_capacity(REPS);
    let mut rows = 0;
    for rep in 0..=REPS {
        let t = Instant::now();
        rows = run()?;
        if rep > 0 {
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(Timing::of(
        scan.id,
        scan.label,
        f64::NAN,
        samples,
        rows,
        None,
    ))
}

/// The figures of one overview in a line, which both backends must agree on.
pub fn figures(o: &asset_catalog_server::index::Overview) -> String {
    let days: u64 = o.per_day.iter().map(|d| d.assets).sum();
    let first = o.clients.first().map_or("", |c| c.client.as_str());
    format!(
        "{} assets, {} bytes, {} problems; {days} in {} days; {} clients, {first} last seen",
        o.assets,
        o.bytes,
        o.problems,
        o.per_day.len(),
        o.clients.len()
    )
}
