//! kill -9 of the watcher at random points while it ingests files (some
//! there before the first start, the rest written while it is being killed
//! over and over, some of them renamed, some in groups of identical copies
//! that appear together), then one run to the end: every content stored
//! exactly once, nothing sent to a server that already had it, every path
//! recorded, the queue empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{seeded_rng, sized};
use crate::support::{Home, Server, content, sha, wait_stored, write};

/// The seed of the soak run that found issue 11 (a restarted watcher sent
/// bytes the server was still storing from the killed one's last request).
const ISSUE_11_SEED: u64 = 1_796_018_914_334_227_284;

/// One planned file: where, and which content (several paths may share one).
struct Planned {
    path: PathBuf,
    key: usize,
    len: usize,
}

/// `n` files in 20 directories: mostly 1–48 KiB, every 250th 3 MiB (long
/// enough to be killed mid-upload), every 40th and 41st a copy of its
/// predecessor (three paths of one content, written together).
fn plan(home: &Home, n: usize, rng: &mut impl Rng) -> Vec<Planned> {
    let mut out: Vec<Planned> = Vec::with_capacity(n);
    for i in 0..n {
        let path = home.watched.join(format!("d{}/f{i}.bin", i % 20));
        let (key, len) = match out.last() {
            Some(prev) if i % 40 <= 1 && i > 1 => (prev.key, prev.len),
            _ if i % 250 == 7 => (i, 3 << 20),
            _ => (i, rng.random_range(1024..48 * 1024)),
        };
        out.push(Planned { path, key, len });
    }
    out
}

fn bytes_of(p: &Planned) -> Vec<u8> {
    content(&format!("kill-{}", p.key), p.len)
}

/// The renames made after writing chunk `c` of the late files: one early
/// file (most likely synced by then) and one file of the chunk before (most
/// likely still queued or in flight), each into `moved/`.
fn renames_after(c: usize, early: usize, per_chunk: usize) -> Vec<usize> {
    let mut v = vec![(c * 23) % early];
    if c > 0 {
        v.push(early + (c - 1) * per_chunk + 3);
    }
    v
}

fn moved(home: &Home, i: usize) -> PathBuf {
    home.watched.join(format!("moved/f{i}.bin"))
}

fn rel(home: &Home, path: &Path) -> String {
    let rel = path.strip_prefix(&home.watched).expect("under w/");
    format!("w/{}", rel.display())
}

#[test]
fn faults_kill_9_at_random_points_stores_every_file_exactly_once() {
    kill_loop(sized(2_000, 10_000), sized(20, 100), None);
}

/// Issue 11's seed at CI size, on every run.
#[test]
fn faults_kill_9_replays_the_seed_of_issue_11() {
    kill_loop(2_000, 20, Some(ISSUE_11_SEED));
}

fn kill_loop(n: usize, rounds: usize, seed: Option<u64>) {
    const PER_CHUNK: usize = 25;
    let mut rng = seeded_rng("kill -9", seed);
    let max_run_ms = 700;
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let files = plan(&home, n, &mut rng);
    std::fs::create_dir_all(home.watched.join("moved")).expect("moved/");
    // Half before the first start (the startup scan finds them), half
    // written by another thread while the watcher is killed again and again
    // (inotify finds them, or the next startup scan), with renames between.
    let early = n / 2;
    let late: Vec<(PathBuf, Vec<u8>)> = files[early..]
        .iter()
        .map(|p| (p.path.clone(), bytes_of(p)))
        .collect();
    files[..early]
        .iter()
        .for_each(|p| write(&p.path, &bytes_of(p)));
    let mut renamed: BTreeMap<usize, PathBuf> = BTreeMap::new();
    let mut moves = Vec::new();
    for c in 0..late.len().div_ceil(PER_CHUNK) {
        let mut batch: Vec<(PathBuf, PathBuf)> = Vec::new();
        for i in renames_after(c, early, PER_CHUNK) {
            if i < n && !renamed.contains_key(&i) {
                renamed.insert(i, moved(&home, i));
                batch.push((files[i].path.clone(), moved(&home, i)));
            }
        }
        moves.push(batch);
    }
    let writer = std::thread::spawn(move || {
        for (chunk, renames) in late.chunks(PER_CHUNK).zip(moves) {
            chunk.iter().for_each(|(path, data)| write(path, data));
            for (from, to) in renames {
                std::fs::rename(&from, &to).expect("rename");
            }
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

    // Per content: its size, the paths it ends at, and the paths it may
    // have been seen at on the way (before a rename).
    let mut by_content: BTreeMap<String, (usize, BTreeSet<String>, BTreeSet<String>)> =
        BTreeMap::new();
    for (i, p) in files.iter().enumerate() {
        let e = by_content.entry(sha(&bytes_of(p))).or_insert((
            p.len,
            BTreeSet::new(),
            BTreeSet::new(),
        ));
        let now = renamed.get(&i).unwrap_or(&p.path);
        e.1.insert(rel(&home, now));
        e.2.insert(rel(&home, &p.path));
        e.2.insert(rel(&home, now));
    }
    let want: Vec<String> = by_content.keys().cloned().collect();
    let stored_before_last = server.hashes().len();
    let run = home.start();
    wait_stored(&server, &home, &want, Duration::from_secs(300));
    assert_eq!(run.stop().code(), Some(0));
    eprintln!(
        "{rounds} kills in {killing:?}: {stored_before_last} of {} contents stored before the last start; {} files renamed; {} redundant uploads",
        want.len(),
        renamed.len(),
        server.redundant_uploads()
    );

    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
    assert_eq!(status["failed"].as_u64(), Some(0), "{status}");
    let total: u64 = by_content.values().map(|(len, ..)| *len as u64).sum();
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
    for (hash, (_, now, ever)) in &by_content {
        assert!(
            objects.iter().any(|o| o.starts_with(hash.as_str())),
            "{hash} missing from the bucket"
        );
        let seen: BTreeSet<String> = server.sighting_paths(hash).into_iter().collect();
        assert!(
            now.is_subset(&seen),
            "{hash}: seen at {seen:?}, is at {now:?}"
        );
        assert!(
            seen.is_subset(ever),
            "{hash}: seen at {seen:?}, only ever at {ever:?}"
        );
    }
}
