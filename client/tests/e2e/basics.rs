//! Files present before start and written during the run, duplicates,
//! readiness and a clean stop, `status`, `init` and `check-config`.

use std::time::Duration;

use crate::support::{Home, Server, content, sha, tree, wait_stored, write};

const T: Duration = Duration::from_secs(90);

#[test]
fn files_before_start_and_during_run_are_stored_once() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let a = content("a", 10_000);
    let b = content("b", 300_000);
    write(&home.watched.join("a.txt"), &a);
    write(&home.watched.join("deep/er/b.bin"), &b);
    write(&home.watched.join("copy-of-a.txt"), &a);
    write(&home.watched.join("ignored.tmp"), b"temp");
    let before = tree(&home.watched);
    let run = home.start();
    assert!(
        run.messages.iter().any(|m| m.contains("STATUS=")),
        "{:?}",
        run.messages
    );
    wait_stored(&server, &home, &[sha(&a), sha(&b)], T);

    let c = content("c", 70_000);
    write(&home.watched.join("later/c.jpg"), &c);
    wait_stored(&server, &home, &[sha(&c)], T);
    assert_eq!(run.stop().code(), Some(0));
    let after = tree(&home.watched);
    let later: Vec<_> = after
        .iter()
        .filter(|e| !before.contains(e))
        .map(|e| e.0.clone())
        .collect();
    assert_eq!(
        later,
        vec![home.watched.join("later"), home.watched.join("later/c.jpg")],
        "the watcher wrote or modified nothing in the watched tree"
    );
    assert!(home.state_dir().join("state.sqlite3").exists());

    assert_eq!(server.hashes().len(), 3, "the .tmp file is never sent");
    let total = (a.len() + b.len() + c.len()) as u64;
    assert_eq!(server.stored_bytes(), total);
    assert_eq!(server.redundant_uploads(), 0);
    assert_eq!(home.status()["bytes_sent"].as_u64(), Some(total));
    assert_eq!(
        server.sighting_paths(&sha(&a)),
        vec!["w/a.txt".to_owned(), "w/copy-of-a.txt".to_owned()]
    );
    assert_eq!(
        server.sighting_paths(&sha(&b)),
        vec!["w/deep/er/b.bin".to_owned()]
    );
    let detail = server.detail(&sha(&c));
    assert_eq!(detail["content_type"], "image/jpeg");
    assert!(
        detail["sightings"][0]["client"]
            .as_str()
            .is_some_and(|c| c.ends_with("-tester"))
    );
}

#[test]
fn status_reports_state_and_init_refuses_to_overwrite() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let out = home.run(&["init"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = home.run(&["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("as \"w\""));

    let text = std::fs::read_to_string(home.config_file()).expect("config") + "\nbogus = 1\n";
    std::fs::write(home.config_file(), text).expect("write");
    let out = home.run(&["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("line"), "{err}");

    let out = home.run(&["--config", "/nonexistent/x.toml", "status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Queue:") && text.contains("not created yet"),
        "{text}"
    );
}

#[test]
fn a_permanent_failure_is_shown_and_blocks_nothing_else() {
    let server = Server::start_with("max_upload_bytes = 100000");
    let home = Home::new(&server, &[]);
    let small = content("small", 5000);
    let big = content("big", 200_000);
    write(&home.watched.join("big.iso"), &big);
    write(&home.watched.join("small.txt"), &small);
    let run = home.start();
    crate::support::wait_until("failure recorded", T, || {
        (home.status()["failed"].as_u64() == Some(1)).then_some(())
    });
    wait_stored(&server, &home, &[sha(&small)], T);
    let status = home.status();
    let failure = &status["failures"][0];
    assert!(
        failure["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("w/big.iso")),
        "{status}"
    );
    assert!(
        failure["error"].as_str().is_some_and(|e| e.contains("413")),
        "{status}"
    );
    let text = String::from_utf8_lossy(&home.run(&["status"]).stdout).into_owned();
    assert!(
        text.contains("Failed:     1") && text.contains("payload_too_large"),
        "{text}"
    );
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.hashes().len(), 1);
    assert_eq!(server.stored_bytes(), small.len() as u64);
}

#[test]
fn systemd_protocol_watchdog_and_a_stop_that_loses_nothing() {
    let server = Server::start();
    // A long quiet period: the file below is still waiting when SIGTERM comes.
    let home = Home::new(&server, &[("ASSET_WATCHER__QUIET_PERIOD_MS", "30000")]);
    let mut run = home.start_env(&[("WATCHDOG_USEC", "400000")]);
    run.wait_for_message("WATCHDOG=1", T);
    let data = content("pending at stop", 777);
    write(&home.watched.join("pending.txt"), &data);
    assert_eq!(run.stop().code(), Some(0));
    // SIGTERM drains the kernel's queued events: the file is either saved in
    // the queue, or (when its upload was already in flight) finished during
    // the graceful stop. Lost — neither queued nor stored — is the failure.
    let queued = home.status()["queued"].as_u64();
    let stored = server.hashes().contains(&sha(&data));
    assert!(
        (queued == Some(1)) != stored,
        "the pending file must be queued at stop xor stored: queued={queued:?} stored={stored}"
    );

    let home_run = home.start();
    wait_stored(&server, &home, &[sha(&data)], T);
    assert_eq!(home_run.stop().code(), Some(0));
    assert_eq!(server.stored_bytes(), data.len() as u64);
}
