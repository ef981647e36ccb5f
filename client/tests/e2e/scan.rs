//! `asset-watcher scan`: a one-shot sync that exits, and a second scan of
//! unchanged files that reads nothing; with the server down it exits 3 and
//! keeps the files queued.

use crate::support::{Home, Server, content, sha, write};

fn summary(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn scan_syncs_once_and_a_rescan_of_unchanged_files_hashes_nothing() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let mut want = Vec::new();
    let mut total = 0;
    for i in 0..200 {
        let data = content(&format!("scan{i}"), 4096);
        total += data.len();
        want.push(sha(&data));
        write(&home.watched.join(format!("s/{}/{i}.bin", i % 7)), &data);
    }
    let out = home.run(&["scan"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        summary(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = summary(&out);
    assert!(text.contains(&format!("bytes_sent={total}")), "{text}");
    assert!(text.contains(&format!("bytes_hashed={total}")), "{text}");
    let have = server.hashes();
    assert!(want.iter().all(|h| have.contains(h)));
    assert_eq!(server.stored_bytes(), total as u64);

    let out = home.run(&["scan"]);
    assert!(out.status.success());
    let text = summary(&out);
    assert!(
        text.contains("scanned 200 files") && text.contains("0 queued"),
        "{text}"
    );
    assert!(text.contains("bytes_sent=0 bytes_hashed=0"), "{text}");
    assert_eq!(server.redundant_uploads(), 0);
}

#[test]
fn scan_with_the_server_down_exits_3_and_keeps_the_queue() {
    let mut server = Server::start();
    let home = Home::new(&server, &[]);
    let data = content("queued", 5000);
    write(&home.watched.join("q.bin"), &data);
    server.stop();
    let out = home.run(&["scan"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stay queued"));
    assert_eq!(home.status()["queued"].as_u64(), Some(1));

    server.spawn();
    let out = home.run(&["scan"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary(&out).contains("bytes_hashed=0"),
        "the hash was kept: {}",
        summary(&out)
    );
    assert!(server.hashes().contains(&sha(&data)));
    assert_eq!(server.stored_bytes(), data.len() as u64);
}
