//! The scaled-out deployment under faults: a 3-node Garage cluster
//! (`replication_factor = 3`), three `asset-catalog-server` processes on one
//! PostgreSQL index (server `i` talks to Garage node `i`), HAProxy in front
//! with `/readyz` health checks, and two watchers ingesting overlapping trees
//! through HAProxy. During the ingest one server is killed with -9 (and
//! started again), one Garage node is stopped for 30 s, and PostgreSQL is
//! restarted. Afterwards every distinct content is in the bucket exactly
//! once, `fsck` finds index = bucket, every path is sighted, and no watcher
//! sent a content's bytes again after a server had confirmed it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use testkit::fleet::Fleet;
use testkit::garage::GarageCluster;
use testkit::haproxy::Haproxy;

use crate::support::{Home, content, http, sha, write};

/// Files per batch and watcher: unique ones, plus shared ones both write;
/// five times as many at soak size (`ASSET_CATALOG_SOAK=1`).
const UNIQUE: usize = 40;
const SHARED: usize = 15;

fn size() -> usize {
    if std::env::var_os("ASSET_CATALOG_SOAK").is_some_and(|v| v == "1") {
        5
    } else {
        1
    }
}

/// One file a watcher should report: its client, relative path, content hash.
#[derive(Debug, Clone)]
struct Placed {
    client: &'static str,
    path: String,
    sha: String,
}

/// What happened when, for the report.
#[derive(Debug, Default)]
struct Timeline {
    events: Vec<(Duration, String)>,
    /// (elapsed, contents stored, contents written) sampled every 250 ms.
    progress: Vec<(Duration, usize, usize)>,
}

fn storage_section(garage: &GarageCluster, secret: &Path, i: usize) -> String {
    format!(
        "[storage]\nurl = \"s3://{bucket}\"\nendpoint = \"{endpoint}\"\nregion = \"{region}\"\n\
         allow_http = true\naccess_key_id = \"{key}\"\nsecret_access_key_file = \"{secret}\"\ntimeout_secs = 10\n",
        bucket = garage.bucket(),
        endpoint = garage.endpoint(i),
        region = garage.region(),
        key = garage.access_key(),
        secret = secret.display(),
    )
}

/// Write batch `b` of both trees; returns what was placed.
fn write_batch(homes: &[(&'static str, &Home)], b: usize) -> Vec<Placed> {
    let mut placed = Vec::new();
    for (h, (client, home)) in homes.iter().enumerate() {
        let mut put = |rel: String, data: Vec<u8>| {
            write(&home.watched.join(&rel), &data);
            placed.push(Placed {
                client,
                path: format!("w/{rel}"),
                sha: sha(&data),
            });
        };
        for n in 0..UNIQUE * size() {
            let len = 1024 + (n * 7919 + b * 131) % (192 * 1024);
            put(
                format!("b{b}/own{n}.bin"),
                content(&format!("{client}-{b}-{n}"), len),
            );
        }
        for n in 0..SHARED * size() {
            let len = 2048 + (n * 4099) % (64 * 1024);
            let dir = if h == 0 { "shared" } else { "copies/of" };
            put(
                format!("{dir}/b{b}-{n}.dat"),
                content(&format!("shared-{b}-{n}"), len),
            );
        }
        if b == 2 {
            // Large enough for a multipart upload, one shared by both trees.
            put(
                format!("big/{client}.iso"),
                content(&format!("big-{client}"), 12 << 20),
            );
            put(
                format!("big/common-{h}.iso"),
                content("big-common", 10 << 20),
            );
        }
    }
    placed
}

/// How many of `wanted` the index holds, asked through the load balancer
/// (the listing, page by page; 0 while no server answers).
fn stored(lb: u16, token: &str, wanted: &BTreeSet<String>) -> usize {
    let mut present = 0;
    let mut path = "/v1/assets?limit=1000".to_owned();
    loop {
        let Some(page) = http::get(lb, &path, token).filter(|r| r.status == 200) else {
            return 0;
        };
        let page = page.json();
        for item in page["items"].as_array().into_iter().flatten() {
            present += usize::from(item["sha256"].as_str().is_some_and(|s| wanted.contains(s)));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/assets?limit=1000&cursor={cursor}"),
            None => return present,
        }
    }
}

#[test]
fn cluster_survives_a_server_kill_a_store_node_outage_and_a_postgres_restart() {
    let mut garage = GarageCluster::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let secret = keys.path().join("s3-secret");
    std::fs::write(&secret, garage.secret_key()).expect("secret");
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&secret, private).expect("chmod");
    let storage = |i: usize| storage_section(&garage, &secret, i);
    let bin = crate::support::server::server_bin();
    let mut fleet = Fleet::start_with(&bin, 3, Some(&storage));
    let lb = Haproxy::start(&fleet.ports);
    let tokens = [
        fleet.create_token("alpha", &["upload"]),
        fleet.create_token("beta", &["upload"]),
    ];
    let alpha = Home::for_url(
        &lb.url(),
        &tokens[0],
        &[("ASSET_WATCHER__CLIENT_ID", "alpha")],
    );
    let beta = Home::for_url(
        &lb.url(),
        &tokens[1],
        &[("ASSET_WATCHER__CLIENT_ID", "beta")],
    );
    let homes = [("alpha", &alpha), ("beta", &beta)];

    let started = Instant::now();
    let started_wall = SystemTime::now();
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let note = |what: String| {
        eprintln!("{:>6.1}s {what}", started.elapsed().as_secs_f64());
        timeline
            .lock()
            .expect("timeline")
            .events
            .push((started.elapsed(), what));
    };
    let mut placed = write_batch(&homes, 0);
    let runs = [alpha.start(), beta.start()];
    let wanted = Arc::new(Mutex::new(BTreeSet::new()));
    wanted
        .lock()
        .expect("wanted")
        .extend(placed.iter().map(|p| p.sha.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (timeline, wanted, done, token) = (
            timeline.clone(),
            wanted.clone(),
            done.clone(),
            fleet.token.clone(),
        );
        let port = lb.port();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let set = wanted.lock().expect("wanted").clone();
                let n = stored(port, &token, &set);
                let sample = (started.elapsed(), n, set.len());
                timeline.lock().expect("timeline").progress.push(sample);
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let mut batch = |b: usize| {
        let more = write_batch(&homes, b);
        wanted
            .lock()
            .expect("wanted")
            .extend(more.iter().map(|p| p.sha.clone()));
        placed.extend(more);
    };

    std::thread::sleep(Duration::from_secs(2));
    note("kill -9 server 1".into());
    let killed_at = SystemTime::now();
    fleet.kill9(1);
    batch(1);
    std::thread::sleep(Duration::from_secs(4));
    fleet.restart(1);
    note("server 1 restarted and ready".into());
    batch(2);
    note("stop Garage node 2 for 30 s".into());
    garage.stop_node(2);
    for b in 3..5 {
        std::thread::sleep(Duration::from_secs(12));
        batch(b);
    }
    std::thread::sleep(Duration::from_secs(6));
    garage.start_node(2);
    note("Garage node 2 back".into());
    note("restart PostgreSQL".into());
    fleet.pg.restart();
    note("PostgreSQL back".into());
    batch(5);

    let all: BTreeSet<String> = placed.iter().map(|p| p.sha.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    while stored(lb.port(), &fleet.token, &all) < all.len() {
        assert!(
            Instant::now() < deadline,
            "not every content stored in time:\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    note(format!("all {} contents stored", all.len()));
    for (_, home) in &homes {
        crate::support::wait_until(
            "the watcher's queue drains",
            Duration::from_secs(60),
            || (home.status()["queued"].as_u64() == Some(0)).then_some(()),
        );
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let watcher_logs: String = runs.iter().map(|r| r.log()).collect();
    for run in runs {
        assert_eq!(run.stop().code(), Some(0));
    }

    assert_each_content_once(&garage, &all);
    let fsck = fleet.run(&["fsck"]);
    assert!(
        fsck.status.success(),
        "fsck finds index = bucket:\n{}\n{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    assert_every_path_sighted(lb.port(), &fleet.token, &placed);
    let (logged, resent) = resent_after_confirmation(&fleet, &tokens, killed_at);
    assert!(
        logged >= all.len(),
        "every upload is in the servers' logs ({logged} lines)"
    );
    assert!(
        resent.is_empty(),
        "content sent again by a watcher after a server confirmed it: {resent:?}"
    );
    let failed = failed_transfers(&watcher_logs);
    report(
        &timeline.lock().expect("timeline"),
        &placed,
        all.len(),
        &failed,
        started_wall,
    );
}

/// Every data object in the bucket, one per content and no other.
fn assert_each_content_once(garage: &GarageCluster, all: &BTreeSet<String>) {
    use futures_util::TryStreamExt;
    use object_store::ObjectStore;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let keys: Vec<String> = runtime.block_on(async {
        let store = garage.store(0);
        store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list the bucket")
    });
    let mut per_sha: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in keys.iter().filter(|k| !k.starts_with("meta/")) {
        per_sha
            .entry(key.chars().take(64).collect())
            .or_default()
            .push(key.clone());
    }
    let twice: Vec<_> = per_sha.iter().filter(|(_, k)| k.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "contents stored under more than one key: {twice:?}"
    );
    let found: BTreeSet<String> = per_sha.into_keys().collect();
    assert_eq!(&found, all, "the bucket holds exactly the contents written");
}

fn assert_every_path_sighted(lb: u16, token: &str, placed: &[Placed]) {
    let mut by_sha: BTreeMap<&str, Vec<&Placed>> = BTreeMap::new();
    for p in placed {
        by_sha.entry(&p.sha).or_default().push(p);
    }
    for (sha, places) in by_sha {
        let detail = http::get(lb, &format!("/v1/assets/{sha}?sightings_limit=1000"), token)
            .expect("asset")
            .json();
        let seen: BTreeSet<(String, String)> = detail["sightings"]
            .as_array()
            .expect("sightings")
            .iter()
            .map(|s| {
                (
                    s["client"].as_str().unwrap_or_default().to_owned(),
                    s["path"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        for p in places {
            assert!(
                seen.contains(&(p.client.to_owned(), p.path.clone())),
                "{p:?} not sighted: {seen:?}"
            );
        }
    }
}

/// (token id, sha) pairs a server logged as uploaded twice where the first
/// was answered: not logged by the killed server in its last second.
fn resent_after_confirmation(
    fleet: &Fleet,
    tokens: &[String],
    killed_at: SystemTime,
) -> (usize, Vec<String>) {
    let ids: Vec<&str> = tokens.iter().filter_map(|t| t.split('_').nth(1)).collect();
    let mut uploads: BTreeMap<(String, String), Vec<(usize, String)>> = BTreeMap::new();
    for i in 0..fleet.ports.len() {
        for line in fleet
            .log(i)
            .lines()
            .filter(|l| l.contains(" upload ") || l.ends_with(" upload"))
        {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(|v| v.trim_matches('"').to_owned())
            };
            if let (Some(sha), Some(token)) = (field("asset.sha256="), field("token.id=")) {
                let at = line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if ids.contains(&token.as_str()) {
                    uploads.entry((token, sha)).or_default().push((i, at));
                }
            }
        }
    }
    let killed: time::OffsetDateTime = killed_at.into();
    let logged = uploads.values().map(Vec::len).sum();
    let resent = uploads
        .into_iter()
        .filter(|(_, seen)| seen.len() > 1)
        .filter(|(_, seen)| {
            let (server, at) = &seen[0];
            let at =
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                    .ok();
            let unanswered =
                *server == 1 && at.is_some_and(|t| (killed - t).whole_milliseconds().abs() < 1000);
            !unanswered
        })
        .map(|((token, sha), seen)| format!("{token} {sha} {seen:?}"))
        .collect();
    (logged, resent)
}

/// When the watchers logged a transfer that failed (and will be retried).
fn failed_transfers(logs: &str) -> Vec<time::OffsetDateTime> {
    logs.lines()
        .filter(|l| l.contains("transfer failed"))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .collect()
}

/// Figures for the note: files, and what each fault cost: the transfers
/// the watchers saw fail (and retried) until the next event, and the
/// longest stretch after it during which contents waited and none was stored.
fn report(
    timeline: &Timeline,
    placed: &[Placed],
    contents: usize,
    failed: &[time::OffsetDateTime],
    started: SystemTime,
) {
    eprintln!(
        "cluster: {} files, {contents} distinct contents, {} transfers failed and were retried",
        placed.len(),
        failed.len()
    );
    let wall = |at: Duration| time::OffsetDateTime::from(started + at);
    for (n, (at, what)) in timeline.events.iter().enumerate() {
        let until = timeline.events.get(n + 1).map_or(Duration::MAX, |e| e.0);
        let retried = failed
            .iter()
            .filter(|t| **t >= wall(*at) && (until == Duration::MAX || **t < wall(until)))
            .count();
        let after: Vec<_> = timeline.progress.iter().filter(|(t, ..)| t >= at).collect();
        let (mut stall, mut since) = (Duration::ZERO, None);
        for pair in after.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            if next.1 == prev.1 && prev.1 < prev.2 {
                let from = *since.get_or_insert(prev.0);
                stall = stall.max(next.0.saturating_sub(from));
            } else {
                since = None;
            }
        }
        eprintln!(
            "  {:>6.1}s {what}: {retried} transfers failed until the next event; longest stall with work waiting {:.1} s",
            at.as_secs_f64(),
            stall.as_secs_f64()
        );
    }
}
