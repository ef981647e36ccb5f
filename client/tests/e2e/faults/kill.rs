//! kill -9 of the watcher at random points while it ingests files (some
//! there before the first start, the rest written while it is being killed
//! over and over), then one run to the end: every content stored exactly
//! once, nothing sent to a server that already had it, every path recorded,
//! the queue empty.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::Rng;

use super::{seeded_rng, sized};
use crate::support::{Home, Server, content, sha, wait_stored, write};

/// One planned file: where, and which content (several paths may share one).
struct Planned {
    path: PathBuf,
    key: usize,
    len: usize,
}

/// `n` files in 20 directories: mostly 1–48 KiB, every 250th 3 MiB (long
/// enough to be killed mid-upload), every 40th a copy of its predecessor.
fn plan(home: &Home, n: usize, rng: &mut impl Rng) -> Vec<Planned> {
    let mut out: Vec<Planned> = Vec::with_capacity(n);
    for i in 0..n {
        let path = home.watched.join(format!("d{}/f{i}.bin", i % 20));
        let (key, len) = match out.last() {
            Some(prev) if i % 40 == 0 => (prev.key, prev.len),
            _ if i % 250 == 7 => (i, 3 << 20),
            _ => (i, rng.random_range(1024..48 * 1024)),
        };
        out.push(Planned { path, key, len });
    }
    out
}

fn write_planned(p: &Planned) {
    write(&p.path, &content(&format!("kill-{}", p.key), p.len));
}

#[test]
fn faults_kill_9_at_random_points_stores_every_file_exactly_once() {
    let mut rng = seeded_rng("kill -9");
    let (n, rounds, max_run_ms) = (sized(2_000, 10_000), sized(20, 100), 700);
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let files = plan(&home, n, &mut rng);
    // Half before the first start (the startup scan finds them), half
    // written by another thread while the watcher is killed again and again
    // (inotify finds them, or the next startup scan).
    let (early, late) = files.split_at(n / 2);
    early.iter().for_each(write_planned);
    let late_owned: Vec<Planned> = late
        .iter()
        .map(|p| Planned {
            path: p.path.clone(),
            key: p.key,
            len: p.len,
        })
        .collect();
    let writer = std::thread::spawn(move || {
        for chunk in late_owned.chunks(25) {
            chunk.iter().for_each(write_planned);
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let t0 = Instant::now();
    for round in 0..rounds {
        let run = home.spawn(&[], &[]);
        let ms = rng.random_range(0..=max_run_ms);
        std::thread::sleep(Duration::from_millis(ms));
        run.kill9();
        let stored = server.metric("asset_catalog_uploads_total{outcome=\"created\"}");
        eprintln!("round {round}: killed after {ms} ms, {stored} contents stored so far");
    }
    writer.join().expect("writer thread");
    let killing = t0.elapsed();

    let mut by_content: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for p in &files {
        let rel = p.path.strip_prefix(&home.watched).expect("under w/");
        let e = by_content
            .entry(sha(&content(&format!("kill-{}", p.key), p.len)))
            .or_insert((p.len, Vec::new()));
        e.1.push(format!("w/{}", rel.display()));
    }
    let want: Vec<String> = by_content.keys().cloned().collect();
    let stored_before_last = server.hashes().len();
    let run = home.start();
    wait_stored(&server, &home, &want, Duration::from_secs(300));
    assert_eq!(run.stop().code(), Some(0));
    eprintln!(
        "{rounds} kills in {killing:?}: {stored_before_last} of {} contents stored before the last start",
        want.len()
    );

    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
    assert_eq!(status["failed"].as_u64(), Some(0), "{status}");
    let total: u64 = by_content.values().map(|(len, _)| *len as u64).sum();
    assert_eq!(server.hashes().len(), want.len(), "every content, no other");
    assert_eq!(
        server.metric("asset_catalog_uploads_total{outcome=\"created\"}"),
        want.len() as u64
    );
    assert_eq!(server.stored_bytes(), total, "every content stored once");
    assert_eq!(
        server.redundant_uploads(),
        0,
        "no content's bytes were sent to a server that had them"
    );
    let objects = server.objects();
    assert_eq!(
        objects.len(),
        want.len(),
        "one object per content in the bucket"
    );
    for (hash, (_, paths)) in &by_content {
        assert!(
            objects.iter().any(|o| o.starts_with(hash.as_str())),
            "{hash} missing from the bucket"
        );
        let mut paths = paths.clone();
        paths.sort();
        assert_eq!(server.sighting_paths(hash), paths, "sightings of {hash}");
    }
}
