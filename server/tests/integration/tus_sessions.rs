//! tus sessions over time and across servers: an abandoned session expires
//! (its parts deleted, HEAD and PATCH 404, the gauges back to 0); a session
//! begun on one server of a fleet is cut by `kill -9` of that server at a
//! random point of a PATCH and continued on another server, re-sending at
//! most one part.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::support::{Kind, TestServer, sha256_hex};
use crate::tus::{MIB, b64, create, head, patch, random, small_parts};

/// Poll `probe` every 100 ms until it holds (at most `secs`).
async fn eventually<F, Fut>(secs: u64, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !probe().await {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn an_abandoned_session_expires(kind: Kind) {
    let s = TestServer::start_with(kind, |c| {
        small_parts(c);
        c.uploads.expire_secs = 3;
    })
    .await;
    let body = random(12 * MIB, 5);
    let sha = sha256_hex(&body);
    let (status, headers, json) = create(&s, &s.token, &sha, "abandoned.mov", body.len()).await;
    assert_eq!(status, 201, "{json}");
    let location = crate::tus::header(&headers, "Location");
    let (status, offset, _) = patch(&s, &s.token, &location, 0, &body[..6 * MIB]).await;
    assert_eq!((status, offset), (204, Some(5 * MIB as u64)));

    // The gauges (refreshed by the expirer, every second here) count it.
    eventually(10, "the gauges count the open session", || async {
        s.metric("asset_catalog_upload_sessions").await == 1
            && s.metric("asset_catalog_upload_session_bytes").await == 5 * MIB as u64
    })
    .await;
    // Abandoned: after expire_secs it is aborted and forgotten.
    eventually(30, "the session expires", || async {
        head(&s, &s.token, &location).await.0 == 404
    })
    .await;
    let (status, _, json) = patch(&s, &s.token, &location, 5 * MIB, &body[5 * MIB..]).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (404, Some("unknown_upload"))
    );
    eventually(10, "the gauges are back to 0", || async {
        s.metric("asset_catalog_upload_sessions").await == 0
            && s.metric("asset_catalog_upload_session_bytes").await == 0
    })
    .await;
    assert_eq!(s.get_json(&format!("/v1/assets/{sha}")).await.0, 404);
    s.assert_no_staging().await;
    s.stop().await;
}

/// A fleet server's tus request builder.
fn tus(
    client: &awc::Client,
    method: awc::http::Method,
    url: String,
    token: &str,
) -> awc::ClientRequest {
    client
        .request(method, url)
        .bearer_auth(token)
        .insert_header(("Tus-Resumable", "1.0.0"))
}

fn offset_of(res: &awc::ClientResponse<impl futures_util::Stream>) -> Option<u64> {
    res.headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// Server 0 of two on one PostgreSQL index takes a PATCH and is killed (-9)
/// at a random point of it; server 1 reports the committed offset and
/// finishes the session. At most one part (16 MiB) is sent twice.
#[actix_web::test]
async fn another_server_continues_a_session_cut_by_kill_9() {
    const PART: usize = 16 * MIB;
    let seed = std::env::var("TUS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()));
    // The cut: somewhere past the first part and before the last byte.
    let len = 56 * MIB + 12_345;
    let cut = PART + (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % (len - PART - 1);
    println!("seed {seed} (TUS_SEED): cut at byte {cut} of {len}");

    let mut fleet = crate::fleet::start(2);
    let token = fleet.create_token("tus-fleet", &["upload", "read"]);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .finish();
    let body = Bytes::from(random(len, 6));
    let sha = sha256_hex(&body);
    let meta = format!("sha256 {},filename {}", b64(&sha), b64("fleet.mkv"));
    let res = tus(
        &client,
        awc::http::Method::POST,
        fleet.url(0, "/v1/uploads"),
        &token,
    )
    .insert_header(("Upload-Length", len.to_string()))
    .insert_header(("Upload-Metadata", meta))
    .send()
    .await
    .expect("POST");
    assert_eq!(res.status().as_u16(), 201);
    let location = crate::tus::header(res.headers(), "Location");

    // Server 0 gets the bytes up to the cut, then the sender stalls.
    let sent = body.slice(..cut);
    let stream = futures_util::stream::iter(
        sent.chunks(MIB)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .chain(futures_util::stream::pending());
    let request = tus(
        &client,
        awc::http::Method::PATCH,
        fleet.url(0, &location),
        &token,
    )
    .insert_header(("Content-Type", "application/offset+octet-stream"))
    .insert_header(("Upload-Offset", "0"))
    .send_stream(stream);
    let cut_off = actix_web::rt::spawn(request);

    // Server 1 sees what server 0 committed: every whole part before the cut.
    let committed = (cut / PART * PART) as u64;
    let url1 = fleet.url(1, &location);
    eventually(
        60,
        "server 1 reports server 0's committed parts",
        || async {
            let res = tus(&client, awc::http::Method::HEAD, url1.clone(), &token)
                .send()
                .await
                .expect("HEAD");
            offset_of(&res) == Some(committed)
        },
    )
    .await;
    fleet.kill9(0);
    let _ = cut_off.await;

    let rest = body.slice(committed as usize..);
    let res = tus(&client, awc::http::Method::PATCH, url1.clone(), &token)
        .insert_header(("Content-Type", "application/offset+octet-stream"))
        .insert_header(("Upload-Offset", committed.to_string()))
        .send_body(rest)
        .await
        .expect("PATCH on server 1");
    assert_eq!(res.status().as_u16(), 204, "{}", fleet.log(1));
    assert_eq!(offset_of(&res), Some(len as u64));
    let resent = cut as u64 - committed;
    assert!(
        resent <= PART as u64,
        "{resent} bytes sent twice, more than one part"
    );
    println!("re-sent after the kill: {resent} bytes (one part is {PART})");

    let mut res = client
        .get(fleet.url(1, &format!("/v1/assets/{sha}/content")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
    let stored = res.body().limit(len + 1).await.expect("content");
    assert_eq!(sha256_hex(&stored), sha, "the stored bytes are the content");
    let res = tus(&client, awc::http::Method::HEAD, url1, &token)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(res.status().as_u16(), 404, "a finished session is gone");
    let staged: Vec<_> = std::fs::read_dir(fleet.objects().join("uploads"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(staged.is_empty(), "staged parts left behind: {staged:?}");
    assert_eq!(fleet.data_objects().len(), 1, "{:?}", fleet.data_objects());
}
