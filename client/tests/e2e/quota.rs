//! Issue 12, point 6 end to end: the real server refuses a token's uploads
//! for its rate (`token create --rate`) and its byte quota (`--max-bytes`);
//! the watcher shows the hold in `status`, backs off, and loses nothing —
//! rate-held files all arrive once the rate allows, quota-held files stay
//! queued (not failed) and nothing beyond the quota is stored.

use std::time::Duration;

use crate::support::{Home, Server, content, sha, wait_stored, wait_until, write};

const T: Duration = Duration::from_secs(120);

/// `asset-watcher status` as a person reads it.
fn status_text(home: &Home) -> String {
    String::from_utf8_lossy(&home.run(&["status"]).stdout).into_owned()
}

#[test]
fn rate_and_quota_refusals_pause_uploads_and_lose_nothing() {
    let server = Server::start();
    let home = Home::new(&server, &[]);

    // 30 uploads a minute: a burst of 30, then one every 2 s.
    home.set_token(&server.limited_upload_token("rate", &["--rate", "30"]));
    let mut want = Vec::new();
    for i in 0..40 {
        let data = content(&format!("rate-{i}"), 2_000);
        write(&home.watched.join(format!("rate-{i}.bin")), &data);
        want.push(sha(&data));
    }
    let run = home.start();
    wait_until("the server's rate_limited answers", T, || {
        (server.metric("asset_catalog_errors_total{code=\"rate_limited\"}") > 0).then_some(())
    });
    let shown = wait_until("status shows the rate hold", T, || {
        let text = status_text(&home);
        text.contains("rate_limited").then_some(text)
    });
    wait_stored(&server, &home, &want, T);
    let refused = server.metric("asset_catalog_errors_total{code=\"rate_limited\"}");
    assert_eq!(server.redundant_uploads(), 0, "no content sent twice");
    assert_eq!(server.hashes().len(), 40);
    run.stop();
    eprintln!(
        "rate: 40 files stored, {refused} uploads refused rate_limited; status said:\n{shown}"
    );

    // 10,000 bytes of new content: three 3,000-byte files fit, five do not.
    home.set_token(&server.limited_upload_token("quota", &["--max-bytes", "10000"]));
    let mut quota = Vec::new();
    for i in 0..8 {
        let data = content(&format!("quota-{i}"), 3_000);
        write(&home.watched.join(format!("quota-{i}.bin")), &data);
        quota.push(sha(&data));
    }
    let run = home.start();
    let shown = wait_until("status shows the quota hold", T, || {
        let text = status_text(&home);
        text.contains("quota_exceeded").then_some(text)
    });
    std::thread::sleep(Duration::from_secs(2));
    let stored: Vec<_> = quota
        .iter()
        .filter(|h| server.hashes().contains(*h))
        .collect();
    assert_eq!(stored.len(), 3, "exactly what fits the quota is stored");
    let status = home.status();
    run.stop();
    eprintln!("quota: 3 of 8 stored; status said:\n{shown}\n{status}");
    assert_eq!(status["failed"], 0, "held files are not failures: {status}");
    let waiting = status["queued"].as_u64().unwrap_or(0) + status["retrying"].as_u64().unwrap_or(0);
    assert!(
        waiting >= 5,
        "the 5 files over the quota stay queued: {status}"
    );
}
