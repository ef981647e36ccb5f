//! The server's storage down for a minute (4 minutes in the soak) while
//! files keep arriving: the server refuses uploads with 503
//! `storage_unavailable` and `/readyz` says not ready; the watcher backs off
//! (a few attempts per file, not one a second), keeps its log short, and
//! finishes once storage is back. Nothing is stored twice.

use std::time::{Duration, Instant};

use super::{arrive_in_waves, assert_outage_log_is_short, sized};
use crate::support::{Home, Server, content, is_stored, sha, wait_stored, write};

#[test]
fn faults_storage_down_the_watcher_backs_off_and_finishes_after() {
    let outage = Duration::from_secs(sized(60, 240));
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let first = content("storage-first", 5_000);
    write(&home.watched.join("first.txt"), &first);
    let run = home.start();
    wait_stored(&server, &home, &[sha(&first)], Duration::from_secs(60));
    let lines_before = run.log().lines().count();

    server.break_storage();
    let down = Instant::now();
    let (status, json) = server.readyz_settled(503);
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["code"], "storage_unavailable", "{json}");
    let (mut want, mut total) = arrive_in_waves(&home, "storage", (6, 10), outage);
    std::thread::sleep(outage.saturating_sub(down.elapsed()));
    let refused = server.metric("asset_catalog_errors_total{code=\"storage_unavailable\"}");
    let files = want.len() as u64;
    // Backoff from 1 s, doubling: a file waiting the whole outage is tried
    // about log2(outage) + 1 times; one a second would be `outage` times.
    let per_file = u64::from((outage.as_secs() as u32).ilog2()) + 2;
    eprintln!(
        "{:?} storage outage, {files} files arrived: {refused} uploads refused (at most {} allowed)",
        down.elapsed(),
        files * per_file + 1
    );
    assert!(refused >= files, "each file met the outage: {refused}");
    assert!(
        refused <= files * per_file + 1,
        "{refused} refused uploads for {files} files: no backoff"
    );
    assert_eq!(server.hashes().len(), 1, "nothing half-stored meanwhile");
    let log = run.log();
    let during: Vec<&str> = log.lines().skip(lines_before).collect();
    assert_outage_log_is_short(&during, outage);
    assert!(
        during
            .iter()
            .any(|l| l.contains("storage_unavailable") || l.contains("503")),
        "the outage is reported:\n{}",
        during.join("\n")
    );

    server.restore_storage();
    let back = Instant::now();
    let (status, json) = server.readyz_settled(200);
    assert_eq!(status, 200, "{json}");
    // Files keep arriving: the first to go through ends the outage, and the
    // waiting files are retried at once rather than at their next backoff.
    let last = content("storage-last", 4_000);
    write(&home.watched.join("last.txt"), &last);
    want.push(sha(&last));
    total += last.len();
    while !is_stored(&server, &home, &want) {
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "not all stored 120 s after storage came back; status {}\nlog:\n{}",
            home.status(),
            run.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("all stored {:?} after storage came back", back.elapsed());
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(
        server.stored_bytes(),
        (first.len() + total) as u64,
        "each file stored once"
    );
    assert_eq!(server.redundant_uploads(), 0);
    assert_eq!(server.objects().len(), want.len() + 1, "one object each");
    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
}
