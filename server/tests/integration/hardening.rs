//! Issue 12's server points that strangers and slow senders reach: metric
//! labels from a fixed set whatever is sent, `/readyz` that tells strangers
//! only ready / not ready and probes at most about once a second, a check
//! batch refused without parsing past its limit, and trickling uploads that
//! neither hold slots nor block a normal upload or a DELETE.

use std::time::{Duration, Instant};

use asset_catalog_proto::ErrorCode;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Kind, TestServer, assert_error, client, json_of, parse_response, sha256_hex};

/// Lines of `/metrics` that are samples (not `#` comments), without values.
async fn series(s: &TestServer) -> Vec<String> {
    s.metrics_text()
        .await
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name).to_owned())
        .collect()
}

/// One request without a token: `method` on `path`, raw, answer ignored.
async fn junk(s: &TestServer, method: &str, path: &str) -> u16 {
    let head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    crate::support::raw_exchange(s.addr, &head, b"").await.0
}

pub async fn made_up_methods_and_paths_add_no_metric_series() {
    let s = TestServer::start(Kind::Memory).await;
    // Every kind of junk once, so its (fixed) series exist.
    junk(&s, "BREW", "/coffee").await;
    junk(&s, "GET", "/no/such/route").await;
    junk(&s, "PUT", "/v1/assets/zz").await;
    junk(&s, "BREW", "/v1/assets").await;
    series(&s).await; // the scrape itself is a series too
    let before = series(&s).await;
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..5_000u32 {
        let method = format!("M{i:04X}");
        let path = format!("/{i}/{}", "x".repeat((i % 7) as usize));
        let status = match i % 3 {
            0 => junk(&s, &method, &path).await,
            1 => junk(&s, "GET", &path).await,
            _ => junk(&s, &method, "/v1/assets").await,
        };
        *statuses.entry(status).or_insert(0) += 1;
    }
    let after = series(&s).await;
    eprintln!(
        "5,000 made-up requests answered {statuses:?}; {} series before, {} after",
        before.len(),
        after.len()
    );
    let added: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        added.is_empty(),
        "no request may add a series; added {added:?}"
    );
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().any(|l| l.contains("method=\"other\"")),
        "made-up methods are counted as `other`: {after:?}"
    );
    s.stop().await;
}

pub async fn readyz_tells_strangers_only_ready_or_not() {
    let s = TestServer::start(Kind::File).await;
    let stranger = client();
    let get = |c: awc::Client, url: String| async move {
        json_of(c.get(url).send().await.expect("readyz")).await
    };
    let (status, json) = get(stranger.clone(), s.url("/readyz")).await;
    assert_eq!(
        (status, json.clone()),
        (200, serde_json::json!({"status": "ready"}))
    );
    let (status, json) = get(s.client(), s.url("/readyz")).await;
    assert_eq!(status, 200);
    assert!(
        json["storage"]
            .as_str()
            .is_some_and(|d| d.starts_with("file://")),
        "{json}"
    );
    let (_, json) = get(s.client_with("acat_0123456789ab_00"), s.url("/readyz")).await;
    assert_eq!(
        json,
        serde_json::json!({"status": "ready"}),
        "a bad token earns no details"
    );

    let dir = s.config().storage.url.clone().expect("file url");
    let dir = dir.trim_start_matches("file://").to_owned();
    std::fs::rename(&dir, format!("{dir}.aside")).expect("move objects away");
    std::fs::write(&dir, b"not a directory").expect("block");
    let (status, json) = s.readyz_settled(503).await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let (_, json) = get(stranger.clone(), s.url("/readyz")).await;
    let text = json.to_string();
    assert_eq!(json["message"], "not ready: storage unavailable", "{json}");
    assert!(!text.contains(&dir) && !text.contains("/tmp"), "{text}");
    let (_, json) = get(s.client(), s.url("/readyz")).await;
    assert!(
        json["message"].as_str().is_some_and(|m| m.contains(&dir)),
        "{json}"
    );
    std::fs::remove_file(&dir).expect("unblock");
    std::fs::rename(format!("{dir}.aside"), &dir).expect("restore");
    let (status, _) = s.readyz_settled(200).await;
    assert_eq!(status, 200);

    // A flood: at most about one probe of storage and index per second.
    let first = s.metric("asset_catalog_readiness_probes_total").await;
    let started = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..50 {
        let (c, url) = (stranger.clone(), s.url("/readyz"));
        flood.push(actix_web::rt::spawn(async move {
            let mut sent = 0u64;
            while started.elapsed() < Duration::from_millis(2500) {
                let res = c.get(url.clone()).send().await.expect("readyz");
                assert_eq!(res.status().as_u16(), 200);
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for task in flood {
        sent += task.await.expect("flood");
    }
    let secs = started.elapsed().as_secs_f64();
    let ran = s.metric("asset_catalog_readiness_probes_total").await - first;
    eprintln!("{sent} /readyz in {secs:.1} s ran {ran} probes");
    assert!(
        (ran as f64) <= secs.ceil() + 1.0,
        "{ran} probes for {sent} requests over {secs:.1} s"
    );
    s.stop().await;
}

pub async fn an_oversized_check_batch_is_refused_before_the_rest_is_parsed() {
    let s = TestServer::start(Kind::Memory).await;
    let hash = format!("\"{}\"", "ab".repeat(32));
    let mut body = format!("{{\"hashes\":[{}", vec![hash; 10_001].join(","));
    // Past the limit the body is not even JSON: only a parser that read on
    // would notice.
    body.push_str(",]]] this is not JSON");
    let head = format!(
        "POST /v1/assets/check HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, json) = s.raw_exchange(&head, body.as_bytes()).await;
    assert_error(status, &json, 413, ErrorCode::TooManyHashes);
    s.stop().await;
}

/// A PUT whose head and first byte are sent, then one byte a second.
struct Trickle {
    stream: TcpStream,
    left: usize,
}

impl Trickle {
    async fn start(s: &TestServer, body: &[u8], name: &str) -> Self {
        let mut stream = TcpStream::connect(s.addr).await.expect("connect");
        let head = format!(
            "PUT /v1/assets/{} HTTP/1.1\r\nHost: t\r\n{}x-asset-name: {name}\r\nContent-Length: {}\r\n\r\n",
            sha256_hex(body),
            s.auth_line(),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        stream.write_all(&body[..1]).await.expect("first byte");
        Self {
            stream,
            left: body.len() - 1,
        }
    }

    /// Keep trickling until the server answers; its status.
    async fn answer(mut self) -> u16 {
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                n = self.stream.read(&mut buf) => {
                    let n = n.unwrap_or(0);
                    return if n == 0 { 0 } else { parse_response(&buf[..n]).0 };
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if self.left > 1 {
                        self.left -= 1;
                        let _ = self.stream.write_all(b"t").await;
                    }
                }
            }
        }
    }
}

pub async fn trickling_uploads_hold_no_slot_a_normal_upload_needs() {
    let s = TestServer::start_with(Kind::Memory, |c| {
        c.server.max_concurrent_uploads = 72;
        c.server.same_hash_wait_secs = 2;
    })
    .await;
    let known = b"content that is already stored".to_vec();
    s.upload("known.txt", &known).await;
    let mut tricklers = Vec::new();
    for i in 0..63u32 {
        let body = format!("trickle {i} ").repeat(1000).into_bytes();
        tricklers.push(Trickle::start(&s, &body, &format!("t{i}.txt")).await);
    }
    // The 64th re-sends known content: it holds that hash's lock while its
    // bytes are read and checked.
    let holder = Trickle::start(&s, &known, "again.txt").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let normal = vec![7u8; 1 << 20];
    let (status, json) = s
        .put(&sha256_hex(&normal), "normal.bin", normal.clone())
        .await;
    assert_eq!(status, 201, "a normal upload beside 64 trickles: {json}");
    let normal_took = started.elapsed();
    let (status, json) = s.delete(&sha256_hex(&known)).await;
    assert_error(status, &json, 429, ErrorCode::TooManyRequests);
    let tasks: Vec<_> = tricklers
        .into_iter()
        .chain([holder])
        .map(|t| actix_web::rt::spawn(t.answer()))
        .collect();
    let mut answers = std::collections::BTreeMap::new();
    for t in tasks {
        *answers.entry(t.await.expect("trickler")).or_insert(0) += 1;
    }
    let cut_after = started.elapsed();
    eprintln!(
        "normal upload took {normal_took:?} beside 64 trickles; DELETE behind a trickle: 429 after the 2 s wait; trickles answered {answers:?} after {cut_after:?}"
    );
    assert_eq!(
        answers.get(&408),
        Some(&64),
        "every trickle is cut with 408: {answers:?}"
    );
    // The slots are free again: 64 uploads at once all go through.
    let mut burst = Vec::new();
    for i in 0..64u32 {
        let (c, url) = (s.client(), s.url(""));
        burst.push(actix_web::rt::spawn(async move {
            let body = Bytes::from(format!("burst {i}"));
            let res = c
                .put(format!("{url}/v1/assets/{}", sha256_hex(&body)))
                .send_body(body)
                .await
                .expect("PUT");
            res.status().as_u16()
        }));
    }
    for t in burst {
        assert_eq!(t.await.expect("burst"), 201);
    }
    s.stop().await;
}

pub async fn a_trickling_form_upload_is_cut_like_a_put() {
    let s = TestServer::start(Kind::Memory).await;
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    let part = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\n";
    let head = format!(
        "POST /v1/assets HTTP/1.1\r\nHost: t\r\n{}Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n{part}",
        s.auth_line()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let status = Trickle {
        stream,
        left: 100_000,
    }
    .answer()
    .await;
    assert_eq!(status, 408, "a form sent at 1 byte/s is cut");
    s.assert_empty().await;
    s.stop().await;
}
