//! Issue 11: content whose upload is under way counts as present. A watcher
//! killed after the last byte of its `PUT` left leaves that request running
//! on the server; the restarted watcher's check must not be told "missing"
//! (it would send the bytes again), and its sighting gets that upload's
//! outcome: recorded when it stored the content, 404 when it failed.

use std::time::Duration;

use asset_catalog_proto::{ErrorCode, HEADER_CLIENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::protocol::put_until_continue;
use crate::support::{Kind, TestServer, assert_error, json_of, sha256_hex};

async fn missing(s: &TestServer, sha: &str) -> Vec<String> {
    let res = s
        .client()
        .post(s.url("/v1/assets/check"))
        .send_json(&serde_json::json!({ "hashes": [sha] }))
        .await
        .expect("check");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 200, "{json}");
    serde_json::from_value(json["missing"].clone()).expect("missing list")
}

/// A sighting of `sha`, sent in the background.
fn sighting(s: &TestServer, sha: &str) -> tokio::task::JoinHandle<(u16, serde_json::Value)> {
    let req = s
        .client()
        .post(s.url(&format!("/v1/assets/{sha}/sightings")))
        .insert_header((HEADER_CLIENT, "restarted-watcher"));
    actix_web::rt::spawn(async move {
        let body = serde_json::json!({ "path": "w/f.bin", "name": "f.bin" });
        json_of(req.send_json(&body).await.expect("sighting")).await
    })
}

/// A killed watcher's `PUT` of `body` with its first `sent` bytes on the
/// server, and the restarted watcher's check ("present") and sighting
/// (waiting for that upload), as the restarted watcher sends them.
async fn orphan_and_restarted_watcher(
    s: &TestServer,
    sha: &str,
    body: &[u8],
    sent: usize,
) -> (
    tokio::net::TcpStream,
    tokio::task::JoinHandle<(u16, serde_json::Value)>,
) {
    let mut orphan = put_until_continue(s, sha, body.len()).await;
    orphan.write_all(&body[..sent]).await.expect("body start");
    // "100 Continue" leaves before the handler runs (the token is checked in
    // between); from the handler's first step on, the hash is in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !missing(s, sha).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "check still calls {sha} missing while its bytes arrive"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restarted = sighting(s, sha);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !restarted.is_finished(),
        "the sighting waits for the upload"
    );
    (orphan, restarted)
}

#[actix_web::test]
async fn content_arriving_in_an_upload_is_not_missing() {
    let s = TestServer::start(Kind::File).await;
    let body = vec![5u8; 256 * 1024];
    let sha = sha256_hex(&body);
    assert_eq!(
        missing(&s, &sha).await,
        vec![sha.clone()],
        "before the upload"
    );

    // The killed watcher's request: headers, then the body on its way.
    let (mut orphan, restarted) =
        orphan_and_restarted_watcher(&s, &sha, &body, body.len() / 2).await;
    // The rest arrives (the kernel sends what a killed process had written).
    orphan
        .write_all(&body[body.len() / 2..])
        .await
        .expect("rest");
    orphan.shutdown().await.expect("half-close");
    let mut response = Vec::new();
    orphan.read_to_end(&mut response).await.expect("response");
    let (status, json) = restarted.await.expect("sighting task");
    assert_eq!(
        (status, json["sighting_count"].as_u64()),
        (200, Some(2)),
        "{json}"
    );
    assert_eq!(
        s.metric("asset_catalog_uploads_total{outcome=\"created\"}")
            .await,
        1
    );
    assert_eq!(
        s.metric("asset_catalog_uploads_total{outcome=\"existing\"}")
            .await,
        0,
        "no bytes sent twice"
    );
    s.stop().await;
}

#[actix_web::test]
async fn a_sighting_behind_a_failed_upload_gets_404() {
    let s = TestServer::start(Kind::File).await;
    let body = vec![6u8; 256 * 1024];
    let sha = sha256_hex(&body);
    let (orphan, restarted) = orphan_and_restarted_watcher(&s, &sha, &body, 1000).await;
    // Cut off mid-body: nothing is stored, so the content is missing again.
    drop(orphan);
    let (status, json) = restarted.await.expect("sighting task");
    assert_error(status, &json, 404, ErrorCode::NotFound);
    assert_eq!(
        missing(&s, &sha).await,
        vec![sha.clone()],
        "after the failed upload"
    );
    s.assert_empty().await;
    s.stop().await;
}
