//! The server down for a while (50 s in CI, 4 minutes in the soak) while
//! files keep arriving: the watcher queues them, retries with backoff,
//! finishes when the server is back, and its log stays readable: a bounded
//! number of lines for the whole outage, never one per file per retry.
//!
//! 50 s, not less: the test does not read the watcher's notify socket
//! during the outage, and a unix datagram queue holds 10 messages
//! (`net.unix.max_dgram_qlen`), fewer than the STATUS= updates of 50 s. A
//! watcher that sent them from its event loop froze there for good (found
//! by this test; the notifications now go out from their own thread).

use std::time::{Duration, Instant};

use super::{arrive_in_waves, assert_outage_log_is_short, sized};
use crate::support::{Home, Server, content, is_stored, sha, wait_stored, wait_until, write};

#[test]
fn faults_server_down_for_a_while_queues_retries_and_keeps_the_log_readable() {
    let outage = Duration::from_secs(sized(50, 240));
    let mut server = Server::start();
    let home = Home::new(&server, &[]);
    let first = content("outage-first", 5_000);
    write(&home.watched.join("first.txt"), &first);
    let run = home.start();
    wait_stored(&server, &home, &[sha(&first)], Duration::from_secs(60));
    let lines_before = run.log().lines().count();

    server.stop();
    let down = Instant::now();
    let (want, total) = arrive_in_waves(&home, "outage", (5, 40), outage);
    let retried = wait_until("retries recorded", Duration::from_secs(60), || {
        let s = home.status();
        let n = s["retrying"].as_u64().unwrap_or(0);
        (n as usize == want.len()).then_some(s)
    });
    let attempts = retried["retries"][0]["attempts"].as_u64().unwrap_or(0);
    assert!(attempts >= 2, "retried with backoff: {retried}");
    std::thread::sleep(outage.saturating_sub(down.elapsed()));
    let log = run.log();
    let during: Vec<&str> = log.lines().skip(lines_before).collect();
    eprintln!(
        "{:?} outage, {} files waiting, first listed tried {attempts} times; {} log lines:\n{}",
        down.elapsed(),
        want.len(),
        during.len(),
        during.join("\n")
    );
    assert_outage_log_is_short(&during, outage);
    assert!(
        during.iter().any(|l| l.contains("server unavailable")),
        "the outage is reported"
    );

    server.spawn();
    let back = Instant::now();
    let deadline = outage + Duration::from_secs(330);
    while !is_stored(&server, &home, &want) {
        assert!(
            back.elapsed() < deadline,
            "not all stored {deadline:?} after the server came back; status {}\nlog:\n{}",
            home.status(),
            run.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("all stored {:?} after the server came back", back.elapsed());
    let after = run.log();
    assert!(
        after
            .lines()
            .skip(lines_before)
            .any(|l| l.contains("server available again")),
        "the recovery is reported"
    );
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.stored_bytes(), total as u64, "each file stored once");
    assert_eq!(server.redundant_uploads(), 0);
    assert_eq!(server.hashes().len(), want.len() + 1);
    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
    assert_eq!(
        status["bytes_sent"].as_u64(),
        Some((first.len() + total) as u64),
        "no byte sent twice"
    );
}
