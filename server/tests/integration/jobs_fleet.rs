//! Jobs on three real servers sharing one PostgreSQL index: every job runs
//! exactly once (the servers' own counters of finished jobs add up to the
//! number of jobs, no more), and a server killed (-9) in the middle of a
//! job has that job finished by another once its lease ran out.

use std::io::Cursor;
use std::time::{Duration, Instant};

use asset_catalog_proto::{HEADER_CLIENT, HEADER_NAME};
use bytes::Bytes;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

use crate::fleet::{BIN, Fleet};
use crate::support::{json_of, sha256_hex};

/// Lease of the fleet's jobs: a killed server's job runs again after it.
const LEASE_SECS: u64 = 3;
/// The scrub rate: a 24 MiB object takes 12 s, long enough to kill its
/// server in the middle.
const SCRUB_RATE: u64 = 2 * 1024 * 1024;

fn start() -> (Fleet, tempfile::TempDir) {
    let objects = tempfile::tempdir().expect("objects");
    let section = format!(
        "[storage]\nurl = \"file://{}\"\n\n[jobs]\nlease_secs = {LEASE_SECS}\nscrub_bytes_per_sec = {SCRUB_RATE}\n",
        objects.path().display()
    );
    let fleet = Fleet::start_with(std::path::Path::new(BIN), 3, Some(&|_| section.clone()));
    (fleet, objects)
}

fn client(token: &str) -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .add_default_header(("Authorization", format!("Bearer {token}")))
        .finish()
}

async fn upload(fleet: &Fleet, i: usize, name: &str, body: Vec<u8>) -> String {
    let sha = sha256_hex(&body);
    let res = client(&fleet.token)
        .put(fleet.url(i, &format!("/v1/assets/{sha}")))
        .insert_header((HEADER_NAME, name))
        .insert_header((HEADER_CLIENT, "fleet-test"))
        .send_body(Bytes::from(body))
        .await
        .expect("PUT");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 201, "{json}");
    sha
}

async fn asset(fleet: &Fleet, i: usize, sha: &str) -> serde_json::Value {
    let res = client(&fleet.token)
        .get(fleet.url(i, &format!("/v1/assets/{sha}")))
        .send()
        .await
        .expect("GET");
    json_of(res).await.1
}

/// The sum over `servers` of one series of their `/metrics`.
async fn metric_sum(fleet: &Fleet, servers: &[usize], series: &str) -> u64 {
    let mut sum = 0;
    for &i in servers {
        let mut res = client(&fleet.token)
            .get(fleet.url(i, "/metrics"))
            .send()
            .await
            .expect("metrics");
        let text = String::from_utf8(res.body().await.expect("body").to_vec()).expect("utf8");
        sum += text
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
    }
    sum
}

#[actix_web::test]
async fn every_job_runs_exactly_once_across_three_servers() {
    let (fleet, _objects) = start();
    const N: usize = 30;
    let mut hashes = Vec::new();
    for n in 0..N {
        let img = RgbImage::from_fn(120 + n as u32, 80, |x, y| Rgb([x as u8, y as u8, n as u8]));
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut png, ImageFormat::Png)
            .expect("png");
        hashes.push(upload(&fleet, n % 3, &format!("img{n}.png"), png.into_inner()).await);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for sha in &hashes {
        while asset(&fleet, 0, sha).await.get("thumbnail") != Some(&serde_json::Value::Bool(true)) {
            assert!(
                Instant::now() < deadline,
                "jobs did not finish:\n{}",
                fleet.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let all = [0, 1, 2];
    let series = |kind: &str| {
        format!("asset_catalog_job_duration_seconds_count{{kind=\"{kind}\",outcome=\"done\"}}")
    };
    let metadata = metric_sum(&fleet, &all, &series("metadata")).await;
    let thumbnails = metric_sum(&fleet, &all, &series("thumbnail")).await;
    assert_eq!(
        (metadata, thumbnails),
        (N as u64, N as u64),
        "each job ran exactly once"
    );
    let mut per_server = Vec::new();
    for i in all {
        per_server.push(metric_sum(&fleet, &[i], &series("metadata")).await);
    }
    eprintln!("metadata jobs per server: {per_server:?}");
    let out = fleet.run(&["jobs", "status"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains("jobs: 0 queued, 0 running, 0 failed"),
        "{status}"
    );
}

#[actix_web::test]
async fn a_job_of_a_killed_server_is_finished_by_another() {
    let (mut fleet, _objects) = start();
    let big: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha = upload(&fleet, 0, "big.bin", big).await;
    let before = asset(&fleet, 1, &sha).await;
    let out = fleet.run(&["scrub", &sha]);
    assert!(out.status.success(), "{out:?}");
    // Find the server reading it, and kill it in the middle.
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let mut reading = None;
        for i in 0..3 {
            if metric_sum(&fleet, &[i], "asset_catalog_scrub_read_bytes_total").await > 0 {
                reading = Some(i);
            }
        }
        if let Some(i) = reading {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no server took the scrub:\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.kill9(victim);
    let killed = Instant::now();
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = asset(&fleet, others[0], &sha).await;
        if now["verified_at"] != before["verified_at"] {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "nobody finished the scrub:\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after["integrity"], "ok", "{after}");
    assert!(
        killed.elapsed() >= Duration::from_secs(LEASE_SECS),
        "run again only after the lease"
    );
    let done = metric_sum(
        &fleet,
        &others,
        "asset_catalog_job_duration_seconds_count{kind=\"scrub\",outcome=\"done\"}",
    )
    .await;
    assert_eq!(done, 1, "finished once, by a survivor");
    assert!(
        fleet.logs().contains("stopped heartbeating"),
        "the reclaim is logged"
    );
}
