//! A burst of creates while the watcher is frozen (SIGSTOP), far more than
//! the kernel's inotify queue holds (`max_queued_events`, 16384 by default;
//! the global sysctl is left alone): the queue overflows, the watcher
//! rescans, and every file is stored once. 8,000 creates (24,000 events)
//! in CI, 100,000 in the soak, into 50 directories watched before the burst.

use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::sized;
use crate::support::{Home, Server, sha, wait_stored, write};

#[test]
fn faults_a_burst_of_creates_that_overflows_inotify_is_all_found() {
    let n: usize = sized(8_000, 100_000);
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let probe = b"overflow probe".to_vec();
    write(&home.watched.join("probe.txt"), &probe);
    for d in 0..50 {
        std::fs::create_dir_all(home.watched.join(format!("b{d}"))).expect("mkdir");
    }
    let run = home.start();
    wait_stored(&server, &home, &[sha(&probe)], Duration::from_secs(60));

    run.signal(Signal::STOP);
    let t0 = Instant::now();
    let mut want = Vec::with_capacity(n + 1);
    let mut total = probe.len();
    for i in 0..n {
        let data = format!("overflow burst file {i}\n").into_bytes();
        total += data.len();
        want.push(sha(&data));
        write(&home.watched.join(format!("b{}/{i}.txt", i % 50)), &data);
    }
    let written = t0.elapsed();
    run.signal(Signal::CONT);
    want.push(sha(&probe));
    wait_stored(&server, &home, &want, Duration::from_secs(sized(300, 1800)));
    eprintln!(
        "{n} creates in {written:?} while frozen; all stored {:?} after the thaw",
        t0.elapsed() - written
    );
    let log = run.log();
    assert!(
        log.contains("overflowed"),
        "no overflow was reported:\n{log}"
    );
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.hashes().len(), n + 1, "every file, nothing else");
    assert_eq!(server.stored_bytes(), total as u64, "each stored once");
    assert_eq!(server.redundant_uploads(), 0);
    assert_eq!(server.objects().len(), n + 1);
    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
    assert_eq!(status["bytes_sent"].as_u64(), Some(total as u64));
}
