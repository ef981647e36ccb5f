//! Crashes and outages: kill -9 mid-queue, the server down then up, an
//! inotify queue overflow, a watched root deleted and recreated.

use std::time::Duration;

use rustix::process::Signal;

use crate::support::{Home, Server, content, sha, wait_stored, wait_until, write};

const T: Duration = Duration::from_secs(180);

#[test]
fn kill_9_mid_queue_then_restart_stores_every_file_exactly_once() {
    let server = Server::start();
    let home = Home::new(&server, &[("ASSET_WATCHER__UPLOAD_CONCURRENCY", "1")]);
    let n = 1500;
    let size = 16 * 1024;
    let mut want = Vec::new();
    for i in 0..n {
        let data = content(&format!("file{i}"), size);
        want.push(sha(&data));
        write(&home.watched.join(format!("d{}/f{i}.bin", i % 10)), &data);
    }
    let run = home.start();
    let created = "asset_catalog_uploads_total{outcome=\"created\"}";
    wait_until("some uploads", T, || {
        (server.metric(created) >= 50).then_some(())
    });
    run.kill9();
    let done_before = server.metric(created);
    assert!(
        done_before < n as u64,
        "all {n} uploads finished before the kill; the test needs more files"
    );

    let run = home.start();
    wait_stored(&server, &home, &want, T);
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.hashes().len(), n);
    assert_eq!(server.metric(created), n as u64);
    assert_eq!(
        server.stored_bytes(),
        (n * size) as u64,
        "every file stored exactly once"
    );
    assert_eq!(
        server.redundant_uploads(),
        0,
        "nothing acknowledged was sent again"
    );
}

#[test]
fn server_down_then_up_loses_nothing() {
    let mut server = Server::start();
    let home = Home::new(&server, &[]);
    let first = content("first", 2000);
    write(&home.watched.join("first.txt"), &first);
    let run = home.start();
    wait_stored(&server, &home, &[sha(&first)], T);

    assert_eq!(server.stored_bytes(), first.len() as u64);
    server.stop();
    let mut want = Vec::new();
    // Metrics restart with the server: count what the second process stores.
    let mut total = 0;
    for i in 0..20 {
        let data = content(&format!("offline{i}"), 3000 + i);
        total += data.len();
        want.push(sha(&data));
        write(&home.watched.join(format!("offline/{i}.dat")), &data);
    }
    wait_until("retries recorded", T, || {
        let s = home.status();
        (s["retrying"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    let s = home.status();
    assert!(
        s["retries"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("reach")),
        "{s}"
    );

    server.spawn();
    wait_stored(&server, &home, &want, T);
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.stored_bytes(), total as u64);
    assert_eq!(server.redundant_uploads(), 0);
}

#[test]
fn an_inotify_overflow_triggers_a_rescan_that_finds_everything() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let probe = b"probe".to_vec();
    write(&home.watched.join("burst/probe.txt"), &probe);
    let run = home.start();
    wait_stored(&server, &home, &[sha(&probe)], T);
    // Freeze the watcher so the kernel queue (max_queued_events, 16384 by
    // default) overflows: every file written into the watched `burst/`
    // makes three events (create, modify, close).
    let max_queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    let n = max_queued / 3 + 2_000;
    run.signal(Signal::STOP);
    let mut want = Vec::with_capacity(n);
    for i in 0..n {
        let data = format!("burst file {i}\n").into_bytes();
        want.push(sha(&data));
        write(&home.watched.join(format!("burst/{i}.txt")), &data);
    }
    run.signal(Signal::CONT);
    wait_stored(&server, &home, &want, Duration::from_secs(600));
    let log = run.log();
    assert!(
        log.contains("overflowed"),
        "no overflow was reported:\n{log}"
    );
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.hashes().len(), n + 1);
    assert_eq!(server.redundant_uploads(), 0);
}

#[test]
fn a_deleted_watch_root_is_picked_up_again_when_it_returns() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let a = content("root-a", 1000);
    write(&home.watched.join("a.txt"), &a);
    let mut run = home.start();
    wait_stored(&server, &home, &[sha(&a)], T);
    std::fs::rename(&home.watched, home.outside.join("w-moved")).expect("move the root away");
    // The moved-away tree is not watched any more.
    write(
        &home.outside.join("w-moved/not-watched.txt"),
        b"outside now",
    );
    run.wait_for_message("missing", Duration::from_secs(60));
    std::fs::create_dir_all(&home.watched).expect("recreate root");
    let b = content("root-b", 2000);
    write(&home.watched.join("b/b.txt"), &b);
    wait_stored(&server, &home, &[sha(&b)], T);
    let c = content("root-c", 3000);
    write(&home.watched.join("b/c.txt"), &c);
    wait_stored(&server, &home, &[sha(&c)], T);
    assert_eq!(run.stop().code(), Some(0));
    assert!(!server.hashes().contains(&sha(b"outside now")));
    assert_eq!(server.stored_bytes(), (a.len() + b.len() + c.len()) as u64);
}
