//! Storage going away: uploads get 503 `storage_unavailable` (nothing half
//! stored), `/readyz` turns 503, and readiness returns with the storage; and
//! a long S3 outage (Garage killed, restarted on the same port and data)
//! while uploads keep arriving and are retried until stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use asset_catalog_proto::ErrorCode;
use bytes::Bytes;

use crate::support::{Kind, TestServer, assert_error, chunk, json_of, sha256_hex};

pub async fn storage_outage_gives_503_and_not_ready(kind: Kind) {
    let mut s = TestServer::start(kind).await;
    s.upload("before.txt", b"stored before the outage").await;
    let restore = break_storage(&mut s);
    let body = b"sent during the outage";
    let (status, json) = s
        .put(&sha256_hex(body), "during.txt", Bytes::from_static(body))
        .await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let (status, json) = s.readyz_settled(503).await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let (status, _) = s.get_json("/healthz").await;
    assert_eq!(status, 200, "alive even when not ready");
    let (status, json) = s
        .get_json(&format!("/v1/assets/{}", sha256_hex(body)))
        .await;
    assert_error(status, &json, 404, ErrorCode::NotFound);
    if let Some(restore) = restore {
        restore();
        let (status, json) = s.readyz_settled(200).await;
        assert_eq!(status, 200, "{json}");
        s.upload("during.txt", body).await;
    }
    s.stop().await;
}

/// Make the storage fail; returns how to bring it back, when possible.
fn break_storage(s: &mut TestServer) -> Option<Box<dyn FnOnce()>> {
    match s.storage.backend().clone() {
        asset_catalog_server::storage::Backend::File(dir) => {
            let aside = dir.with_extension("aside");
            std::fs::rename(&dir, &aside).expect("move objects dir");
            std::fs::write(&dir, b"not a directory").expect("block the path");
            Some(Box::new(move || {
                std::fs::remove_file(&dir).expect("unblock");
                std::fs::rename(&aside, &dir).expect("restore objects dir");
            }))
        }
        _ => {
            s.garage.as_mut().expect("garage").kill();
            None
        }
    }
}

/// A bucket that does not exist: not ready, and uploads are 503, not 404.
pub async fn missing_bucket_is_an_outage(kind: Kind) {
    let s = TestServer::start_unready(kind, |c| {
        c.storage.url = Some("s3://no-such-bucket".into());
    })
    .await;
    let (status, json) = s.get_json("/readyz").await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let body = b"nowhere to go";
    let (status, json) = s
        .put(&sha256_hex(body), "x.txt", Bytes::from_static(body))
        .await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    s.stop().await;
}

/// How long storage stays down in [`storage_down_while_uploads_keep_arriving`]:
/// 60 s (the test idles meanwhile, so it overlaps with others), 300 s with
/// `ASSET_CATALOG_SOAK=1`.
fn outage_length() -> Duration {
    if std::env::var_os("ASSET_CATALOG_SOAK").is_some_and(|v| v == "1") {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(60)
    }
}

const BEFORE: &[u8] = b"stored before the long outage";

/// What one client saw while retrying one upload until it succeeded.
#[derive(Debug)]
struct Attempts {
    sha: String,
    len: usize,
    refused: usize,
    /// 429s after storage was back: the server at its upload cap when every
    /// waiting client retried at once.
    at_cap: usize,
}

/// PUT `body` every second until it is stored, as a client with retries
/// would; while storage is down every refusal must be 503
/// `storage_unavailable` with Retry-After (never 429: an outage holds no
/// upload slots); once `back` is set, 429 at the cap is load shedding.
async fn upload_with_retries(
    client: awc::Client,
    url: String,
    (name, body): (String, Bytes),
    back: Arc<AtomicBool>,
) -> Attempts {
    let sha = sha256_hex(&body);
    let (mut refused, mut at_cap) = (0, 0);
    loop {
        let storage_back = back.load(Ordering::SeqCst);
        let (status, json, retry_after) = put_once(&client, &url, name.clone(), body.clone()).await;
        if status == 201 {
            return Attempts {
                sha,
                len: body.len(),
                refused,
                at_cap,
            };
        }
        if storage_back && status == 429 {
            assert_error(status, &json, 429, ErrorCode::TooManyRequests);
            at_cap += 1;
        } else {
            assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
        }
        assert!(retry_after, "503 carries Retry-After");
        refused += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Garage killed for [`outage_length`] and restarted on the same port and
/// data while uploads keep arriving (one every 2 s, every fourth through the
/// multipart path): each is refused with 503 `storage_unavailable` until
/// storage returns, `/readyz` says not ready throughout, and afterwards every
/// upload completes, stored once, bytes intact, no multipart upload left.
pub async fn storage_down_while_uploads_keep_arriving(kind: Kind) {
    let mut s = TestServer::start(kind).await;
    s.upload("before.txt", BEFORE).await;
    let garage = s.garage.as_mut().expect("garage");
    garage.kill();
    let down = Instant::now();
    let mut clients = Vec::new();
    let storage_back = Arc::new(AtomicBool::new(false));
    let mut readyz_checks = 0;
    let mut i = 0u64;
    while down.elapsed() < outage_length() {
        let len = if i % 4 == 3 {
            9 * 1024 * 1024 + 1
        } else {
            64 * 1024
        };
        let task = upload_with_retries(
            s.client(),
            s.url(""),
            (format!("during-{i}.bin"), chunk(1000 + i, len)),
            Arc::clone(&storage_back),
        );
        clients.push(actix_web::rt::spawn(task));
        i += 1;
        if i % 5 == 0 {
            let (status, json) = s.get_json("/readyz").await;
            assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
            readyz_checks += 1;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Set before the restart: a 429 can only come once storage answers.
    storage_back.store(true, Ordering::SeqCst);
    s.garage.as_mut().expect("garage").restart().await;
    let back = Instant::now();
    let mut done = Vec::new();
    for client in clients {
        done.push(client.await.expect("uploader"));
    }
    eprintln!(
        "storage down {:?}: {} uploads, {} refusals (503), {readyz_checks} /readyz checks not ready; all stored {:?} after storage returned ({} answers 429 at the upload cap as they all retried at once)",
        back - down,
        done.len(),
        done.iter().map(|a| a.refused - a.at_cap).sum::<usize>(),
        back.elapsed(),
        done.iter().map(|a| a.at_cap).sum::<usize>()
    );
    assert!(
        done.iter().all(|a| a.refused > 0),
        "each upload met the outage: {done:?}"
    );
    let (status, json) = s.readyz_settled(200).await;
    assert_eq!(status, 200, "{json}");
    let mut want = s.keys_of(&format!("{}.txt", sha256_hex(BEFORE)));
    for a in &done {
        let (status, json) = s.get_json(&format!("/v1/assets/{}", a.sha)).await;
        assert_eq!(
            (status, json["size"].as_u64()),
            (200, Some(a.len as u64)),
            "{json}"
        );
        want.extend(s.keys_of(&format!("{}.bin", a.sha)));
    }
    want.sort();
    assert_eq!(s.keys().await, want, "each asset stored once");
    for a in &done {
        let res = s
            .client()
            .get(s.url(&format!("/v1/assets/{}/content", a.sha)))
            .send()
            .await
            .expect("GET");
        let (status, bytes) = (res.status(), body_bytes(res).await);
        assert_eq!((status.as_u16(), sha256_hex(&bytes)), (200, a.sha.clone()));
    }
    if let Some(g) = &s.garage {
        g.wait_unfinished_multipart_uploads(0).await;
    }
    s.stop().await;
}

/// One PUT of `body` to the server at `url`: its status, JSON and whether
/// it carried Retry-After.
async fn put_once(
    client: &awc::Client,
    url: &str,
    name: String,
    body: Bytes,
) -> (u16, serde_json::Value, bool) {
    let res = client
        .put(format!("{url}/v1/assets/{}", sha256_hex(&body)))
        .insert_header(("x-asset-name", name))
        .send_body(body)
        .await
        .expect("PUT");
    let retry_after = res.headers().contains_key(awc::http::header::RETRY_AFTER);
    let (status, json) = json_of(res).await;
    (status, json, retry_after)
}

/// Once an upload has found S3 down, waves of uploads, four times as many
/// at once as the server has upload slots: every one is told 503
/// `storage_unavailable` with Retry-After, never 429 (the slots stay free),
/// and uploads work as soon as storage is back.
pub async fn an_outage_never_fills_the_upload_slots(kind: Kind) {
    const SLOTS: usize = 4;
    let mut s = TestServer::start_with(kind, |c| c.server.max_concurrent_uploads = SLOTS).await;
    s.upload("before.txt", BEFORE).await;
    s.garage.as_mut().expect("garage").kill();
    // The first upload finds the outage (after object_store's retries).
    let (client, url) = (s.client(), s.url(""));
    let (status, json, _) = put_once(&client, &url, "first.bin".into(), chunk(99, 1000)).await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let mut refused = 1;
    for wave in 0..5u64 {
        let puts = (0..4 * SLOTS as u64).map(|i| {
            let len = if i % 4 == 3 { 9 << 20 } else { 64 << 10 };
            put_once(
                &client,
                &url,
                format!("w{wave}-{i}.bin"),
                chunk(wave * 100 + i, len),
            )
        });
        for (status, json, retry_after) in futures_util::future::join_all(puts).await {
            assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
            assert!(retry_after, "503 carries Retry-After");
            refused += 1;
        }
    }
    eprintln!("{refused} uploads during the outage, each 503 storage_unavailable");
    s.garage.as_mut().expect("garage").restart().await;
    let (status, json) = s.readyz_settled(200).await;
    assert_eq!(status, 200, "{json}");
    s.upload("after.txt", b"stored after the outage").await;
    s.stop().await;
}

/// An S3 endpoint that accepts connections and never answers: each storage
/// call ends at `[storage] timeout_secs`, the upload gets 503, and while
/// storage is known to be down the next uploads are refused at once.
pub async fn a_storage_that_never_answers_is_cut_off(kind: Kind) {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", hole.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hole.incoming().take(64) {
            held.push(conn); // accepted, never read or answered
        }
    });
    let s = TestServer::start_unready(kind, |c| {
        c.storage.endpoint = Some(endpoint);
        c.storage.timeout_secs = 2;
    })
    .await;
    let first = Instant::now();
    let (client, url) = (s.client(), s.url(""));
    let (status, json, _) = put_once(&client, &url, "a.bin".into(), chunk(1, 1000)).await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let first = first.elapsed();
    for i in 2..10 {
        let (status, json, retry_after) =
            put_once(&client, &url, format!("{i}.bin"), chunk(i, 1000)).await;
        assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
        assert!(retry_after);
    }
    let (status, json) = s.get_json("/readyz").await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    eprintln!("first upload refused after {first:?} (deadline 2 s), the next 8 at once");
    s.stop().await;
}

async fn body_bytes<S>(mut res: awc::ClientResponse<S>) -> Bytes
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    res.body().limit(64 * 1024 * 1024).await.expect("body")
}
