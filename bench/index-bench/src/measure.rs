//! What B8 times, all through `Index` (what the server calls): the batch
//! check, listing pages (first, deep in the cursor, filtered by name, type
//! and client), the web UI's overview and the sustained insert rate of
//! concurrent uploads. Each
//! query runs once as a warm-up, then `reps` times; the report keeps every
//! sample, its median and its p95.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use asset_catalog_proto::Sha256Hex;
use asset_catalog_server::index::{Cursor, Index, ListFilter, NewAsset, SightingRecord};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use time::OffsetDateTime;

use crate::data::{CLIENTS, Catalog, RARE_NAME};

/// Hashes per check, half of them present.
pub const CHECK_HASHES: usize = 10_000;
/// The server's default `max_sightings_per_asset`.
const SIGHTING_CAP: u64 = 10_000;
const PAGE: usize = 100;

/// One timed call.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: &'static str,
    pub label: String,
    /// The goal for its median, milliseconds.
    pub goal_ms: f64,
    pub call: Call,
}

#[derive(Debug, Clone)]
pub enum Call {
    /// `Index::missing` with `CHECK_HASHES` hashes, a fresh set each time.
    Missing,
    List(Box<ListFilter>),
    /// `Index::overview` of the last `overview::DAYS` days up to the catalog's `now`.
    Overview,
}

/// The timings of one query on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub id: &'static str,
    pub label: String,
    pub goal_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub samples_ms: Vec<f64>,
    /// Items returned (listing), hashes reported missing (check) or clients (overview).
    pub rows: usize,
    /// Hash of the first item (the overview: its figures): both backends must agree.
    pub first: Option<String>,
    /// The query plan, filled in by the backend.
    pub plan: String,
}

/// The sustained insert rate.
#[derive(Debug, Clone, Serialize)]
pub struct InsertRate {
    pub tasks: usize,
    pub seconds: f64,
    pub inserted: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The cursor of the asset at 0-based `position` in listing order (newest
/// first), given the catalog in upload order: the page after it starts at
/// `position + 1`.
pub fn deep_cursor(catalog: &Catalog, upload_order: &[u32], position: usize) -> Cursor {
    let i = upload_order[upload_order.len() - 1 - position.min(upload_order.len() - 1)];
    Cursor {
        first_seen: catalog.first_seen(i),
        sha256: Sha256Hex::from_digest(catalog.sha(i)),
    }
}

/// The B8 queries; `cursor` is the deep page's.
pub fn queries(cursor: Cursor, position: u32) -> Vec<Query> {
    let page = |f: ListFilter| Call::List(Box::new(ListFilter { limit: PAGE, ..f }));
    let none = ListFilter::default;
    let q = |id, label: &str, goal_ms, call| Query {
        id,
        label: label.to_owned(),
        goal_ms,
        call,
    };
    vec![
        q(
            "check",
            "check of 10,000 hashes (half present)",
            50.0,
            Call::Missing,
        ),
        q("first", "first list page", 20.0, page(none())),
        q(
            "deep",
            &format!("list page after position {}", thousands(position)),
            20.0,
            page(ListFilter {
                cursor: Some(cursor),
                ..none()
            }),
        ),
        q(
            "name",
            &format!("name search \"{RARE_NAME}\" (0.04%)"),
            100.0,
            page(ListFilter {
                name: Some(RARE_NAME.into()),
                ..none()
            }),
        ),
        q(
            "name_mid",
            "name search \"PXL_202505\" (0.2%)",
            100.0,
            page(ListFilter {
                name: Some("PXL_202505".into()),
                ..none()
            }),
        ),
        q(
            "name_common",
            "name search \"screenshot\" (14%)",
            100.0,
            page(ListFilter {
                name: Some("screenshot".into()),
                ..none()
            }),
        ),
        q(
            "name_old_common",
            &format!(
                "name search \"IMG_2024\" (a year of photos, none among the newest {})",
                thousands(u32::try_from(asset_catalog_server::index::NAME_WALK_ROWS).unwrap_or(0))
            ),
            100.0,
            page(ListFilter {
                name: Some("IMG_2024".into()),
                ..none()
            }),
        ),
        q(
            "type_prefix",
            "type image/ (prefix, 59%)",
            20.0,
            page(type_filter("image/")),
        ),
        q(
            "type_exact",
            "type text/plain (exact, 8%)",
            20.0,
            page(type_filter("text/plain")),
        ),
        q(
            "type_rare",
            "type application/json (exact, 1%)",
            20.0,
            page(type_filter("application/json")),
        ),
        q(
            "client_busy",
            &client_label(0),
            20.0,
            page(client_filter(0)),
        ),
        q(
            "client_rare",
            &client_label(CLIENTS.len() - 1),
            20.0,
            page(client_filter(CLIENTS.len() - 1)),
        ),
        q(
            "overview",
            &format!(
                "overview (totals, problems, {} days, clients)",
                crate::overview::DAYS
            ),
            200.0,
            Call::Overview,
        ),
    ]
}

/// `900000` as `900,000`.
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn type_filter(ct: &str) -> ListFilter {
    ListFilter {
        content_type: Some(ct.into()),
        ..ListFilter::default()
    }
}

fn client_filter(rank: usize) -> ListFilter {
    ListFilter {
        client: Some(CLIENTS[rank].0.into()),
        ..ListFilter::default()
    }
}

fn client_label(rank: usize) -> String {
    let which = if rank == 0 { "busiest" } else { "rarest" };
    format!("client {} ({which} of 20)", CLIENTS[rank].0)
}

/// Run `query` once to warm up, then `reps` times.
pub async fn time_query(
    index: &Index,
    query: &Query,
    catalog: &Catalog,
    reps: usize,
) -> anyhow::Result<Timing> {
    let mut rng = SmallRng::seed_from_u64(0xb8);
    let mut samples = Vec::with_capacity(reps);
    let (mut rows, mut first) = (0, None);
    for rep in 0..=reps {
        let (elapsed, n, head) = run_once(index, query, catalog, &mut rng).await?;
        if rep > 0 {
            samples.push(elapsed.as_secs_f64() * 1000.0);
        }
        (rows, first) = (n, head);
    }
    Ok(Timing::new(query, samples, rows, first))
}

impl Timing {
    /// The summary of `samples` (ms) of `query`.
    pub fn new(query: &Query, samples: Vec<f64>, rows: usize, first: Option<String>) -> Self {
        Self::of(query.id, &query.label, query.goal_ms, samples, rows, first)
    }

    /// The summary of `samples` (ms) of something labelled `label`.
    pub fn of(
        id: &'static str,
        label: &str,
        goal_ms: f64,
        samples: Vec<f64>,
        rows: usize,
        first: Option<String>,
    ) -> Self {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        Self {
            id,
            label: label.to_owned(),
            goal_ms,
            p50_ms: median(&sorted),
            p95_ms: percentile(&sorted, 95.0),
            min_ms: sorted.first().copied().unwrap_or(f64::NAN),
            max_ms: sorted.last().copied().unwrap_or(f64::NAN),
            samples_ms: samples,
            rows,
            first,
            plan: String::new(),
        }
    }
}

/// One call: how long it took, how many rows, the first item's hash.
pub async fn run_once(
    index: &Index,
    query: &Query,
    catalog: &Catalog,
    rng: &mut SmallRng,
) -> anyhow::Result<(Duration, usize, Option<String>)> {
    match &query.call {
        Call::Missing => {
            let wanted = check_hashes(catalog, rng);
            let start = Instant::now();
            let missing = index.missing(wanted).await.context("Index::missing")?;
            let elapsed = start.elapsed();
            anyhow::ensure!(
                missing.len() == CHECK_HASHES / 2,
                "Index::missing said {} missing, expected {}",
                missing.len(),
                CHECK_HASHES / 2
            );
            Ok((elapsed, missing.len(), None))
        }
        Call::List(filter) => {
            let start = Instant::now();
            let page = index
                .list((**filter).clone())
                .await
                .context("Index::list")?;
            let elapsed = start.elapsed();
            let head = page.items.first().map(|a| a.sha256.to_string());
            Ok((elapsed, page.items.len(), head))
        }
        Call::Overview => {
            let now = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(catalog.now))?;
            let start = Instant::now();
            let overview = index
                .overview(now, crate::overview::DAYS)
                .await
                .context("Index::overview")?;
            let elapsed = start.elapsed();
            let figures = crate::overview::figures(&overview);
            Ok((elapsed, overview.clients.len(), Some(figures)))
        }
    }
}

/// 5,000 hashes of stored assets and 5,000 unknown ones, shuffled.
pub fn check_hashes(catalog: &Catalog, rng: &mut SmallRng) -> Vec<Sha256Hex> {
    let mut present = std::collections::HashSet::new();
    while present.len() < CHECK_HASHES / 2 {
        present.insert(rng.random_range(0..catalog.assets));
    }
    let mut hashes: Vec<Sha256Hex> = present
        .into_iter()
        .map(|i| Sha256Hex::from_digest(catalog.sha(i)))
        .chain((0..CHECK_HASHES / 2).map(|_| Sha256Hex::from_digest(rng.random())))
        .collect();
    for i in (1..hashes.len()).rev() {
        hashes.swap(i, rng.random_range(0..=i));
    }
    hashes
}

/// `tasks` concurrent uploaders inserting new assets (each with one
/// sighting) for `seconds`.
pub async fn insert_rate(
    index: &Index,
    tasks: usize,
    seconds: f64,
    tag: &str,
) -> anyhow::Result<InsertRate> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let (index, tag) = (index.clone(), tag.to_owned());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let (asset, sighting) = new_upload(&tag, task, n);
                let t = Instant::now();
                let done = index.insert(asset, sighting, SIGHTING_CAP).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                anyhow::ensure!(
                    done.created && done.sighted,
                    "insert did not create the asset"
                );
                n += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.context("insert task")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let inserted = latencies.len() as u64;
    Ok(InsertRate {
        tasks,
        seconds: elapsed,
        inserted,
        per_sec: inserted as f64 / elapsed,
        p50_ms: median(&latencies),
        p95_ms: percentile(&latencies, 95.0),
        p99_ms: percentile(&latencies, 99.0),
    })
}

fn new_upload(tag: &str, task: usize, n: u64) -> (NewAsset, SightingRecord) {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(format!("insert-{tag}-{task}-{n}")).into();
    let sha256 = Sha256Hex::from_digest(digest);
    let now = OffsetDateTime::now_utc();
    let name = format!("IMG_{}_{task:02}{n:06}.jpg", now.unix_timestamp());
    let (client, user) = CLIENTS[task % CLIENTS.len()];
    let asset = NewAsset {
        key: format!("{sha256}.jpg"),
        sha256,
        size: 2_500_000,
        content_type: "image/jpeg".into(),
        name: name.clone(),
        first_seen: now,
        uploaded_by: None,
        verified_at: None,
    };
    let sighting = SightingRecord {
        client: client.into(),
        path: format!("/home/{user}/Pictures/new/{name}"),
        name,
        mtime: Some(now),
        seen_at: now,
        token: None,
    };
    (asset, sighting)
}

/// Median of sorted values (the mean of the middle two for an even count,
/// as the harness computes it).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_and_labels() {
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(
            percentile(&(1..=20).map(f64::from).collect::<Vec<_>>(), 95.0),
            19.0
        );
        assert_eq!(thousands(900_000), "900,000");
        assert_eq!(thousands(18_000), "18,000");
        assert_eq!(thousands(999), "999");
    }
}
