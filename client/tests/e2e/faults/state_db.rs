//! A corrupt, truncated or empty state database. Garbage or half a file:
//! `run`, `status` and `check-state` refuse with an error that names the file and the
//! command that moves the state aside; after that command the next start
//! rescans, and the server's check endpoint already has every content, so no
//! byte is sent again. An empty (0-byte) file is a new database: the same
//! rescan, the same zero bytes.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Home, Server, content, sha, wait_stored, write};

/// Run a watcher subcommand that must end by itself within `timeout`.
fn run_bounded(home: &Home, args: &[&str], timeout: Duration) -> Output {
    let mut child = home
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asset-watcher");
    let t0 = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "`asset-watcher {}` still running after {timeout:?}; stderr:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("wait")
}

/// Break the database the way `kind` says.
fn damage(db: &std::path::Path, kind: &str) {
    let len = std::fs::metadata(db).expect("state db").len();
    match kind {
        "garbage" => std::fs::write(db, content("garbage", len as usize)).expect("overwrite"),
        "half" => std::fs::OpenOptions::new()
            .write(true)
            .open(db)
            .and_then(|f| f.set_len(len / 2))
            .expect("truncate"),
        _ => std::fs::write(db, b"").expect("empty"),
    }
}

/// The command between backticks in the error, run by a shell.
fn follow_advice(stderr: &str) {
    let cmd = stderr
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in: {stderr}"));
    assert!(cmd.starts_with("mv "), "{cmd}");
    let ok = std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .expect("sh");
    assert!(ok.success(), "{cmd}");
}

#[test]
fn faults_a_corrupt_or_truncated_state_db_is_refused_with_the_recovery_command() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let n = 300;
    let mut want = Vec::new();
    let mut total = 0;
    for i in 0..n {
        let data = content(&format!("state-{i}"), 3_000 + i);
        total += data.len() as u64;
        want.push(sha(&data));
        write(&home.watched.join(format!("d{}/{i}.bin", i % 7)), &data);
    }
    let run = home.start();
    wait_stored(&server, &home, &want, Duration::from_secs(120));
    assert_eq!(run.stop().code(), Some(0));
    let db = home.state_dir().join("state.sqlite3");
    let out = run_bounded(&home, &["check-state"], Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("state OK"),
        "{stdout}"
    );

    for kind in ["garbage", "half", "empty"] {
        damage(&db, kind);
        if kind != "empty" {
            for args in [&["run"][..], &["status"][..], &["check-state"][..]] {
                let out = run_bounded(&home, args, Duration::from_secs(60));
                let stderr = String::from_utf8_lossy(&out.stderr);
                eprintln!("{kind}, `{}`: {stderr}", args[0]);
                assert!(!out.status.success(), "{kind}: {args:?} refused");
                assert!(
                    stderr.contains(&db.display().to_string()) && stderr.contains("`mv "),
                    "{kind}: the error names the file and the command:\n{stderr}"
                );
            }
            let out = run_bounded(&home, &["run"], Duration::from_secs(60));
            follow_advice(&String::from_utf8_lossy(&out.stderr));
            assert!(!db.exists(), "{kind}: moved aside");
        }
        let run = home.start();
        wait_stored(&server, &home, &want, Duration::from_secs(120));
        assert_eq!(run.stop().code(), Some(0));
        let status = home.status();
        eprintln!("{kind}: after recovery {status}");
        assert_eq!(status["queued"].as_u64(), Some(0), "{kind}: {status}");
        assert_eq!(
            status["synced"].as_u64(),
            Some(n as u64),
            "{kind}: {status}"
        );
        assert_eq!(
            status["bytes_sent"].as_u64(),
            Some(0),
            "{kind}: no byte sent again"
        );
        assert_eq!(status["uploads"].as_u64(), Some(0), "{kind}: {status}");
        assert_eq!(
            status["sightings"].as_u64(),
            Some(n as u64),
            "{kind}: {status}"
        );
        assert_eq!(server.stored_bytes(), total, "{kind}: stored once");
        assert_eq!(server.redundant_uploads(), 0, "{kind}");
        assert_eq!(server.hashes().len(), n, "{kind}");
    }
}
