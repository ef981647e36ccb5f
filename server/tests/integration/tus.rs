//! The tus 1.0.0 protocol (`/v1/uploads`) against the real server (in-process;
//! the file store and Garage through the suite, two servers on one
//! PostgreSQL and expiry in `tus_sessions.rs`): a session in parts
//! whose committed offset is what HEAD reports, content already stored
//! answered at creation, and every kind of bad input refused with nothing
//! visible: a wrong offset, a body past Upload-Length, a declared hash that
//! does not match, foreign and terminated and expired sessions.

use std::time::Duration;

use asset_catalog_proto::ErrorCode;
use awc::http::header::HeaderMap;
use base64::Engine as _;
use bytes::Bytes;

use crate::support::{Kind, TestServer, assert_error, json_of, sha256_hex};

pub(crate) const MIB: usize = 1024 * 1024;

pub(crate) fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub(crate) fn random(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed) % 31) as u8
        })
        .collect()
}

/// Small parts so that a test crosses several part boundaries quickly.
pub(crate) fn small_parts(config: &mut asset_catalog_server::Config) {
    config.storage.part_size_bytes = 5 * MIB as u64;
    // 10,000 parts of 5 MiB must hold the largest upload.
    config.server.max_upload_bytes = 1 << 30;
}

/// `POST /v1/uploads`: status, headers, body.
pub(crate) async fn create(
    s: &TestServer,
    token: &str,
    sha: &str,
    name: &str,
    length: usize,
) -> (u16, HeaderMap, serde_json::Value) {
    let meta = format!(
        "sha256 {},filename {},path {}",
        b64(sha),
        b64(name),
        b64(&format!("big/{name}"))
    );
    let res = s
        .client_with(token)
        .post(s.url("/v1/uploads"))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .insert_header(("Upload-Length", length.to_string()))
        .insert_header(("Upload-Metadata", meta))
        .send()
        .await
        .expect("POST /v1/uploads");
    let headers = res.headers().clone();
    let (status, json) = json_of(res).await;
    (status, headers, json)
}

pub(crate) fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

/// `PATCH location` at `offset` with `body`: status, the Upload-Offset answered, JSON on errors.
pub(crate) async fn patch(
    s: &TestServer,
    token: &str,
    location: &str,
    offset: usize,
    body: &[u8],
) -> (u16, Option<u64>, serde_json::Value) {
    let res = s
        .client_with(token)
        .patch(s.url(location))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .insert_header(("Content-Type", "application/offset+octet-stream"))
        .insert_header(("Upload-Offset", offset.to_string()))
        .send_body(Bytes::copy_from_slice(body))
        .await
        .expect("PATCH");
    let offset = res
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (status, json) = json_of(res).await;
    (status, offset, json)
}

/// `HEAD location`: status and the committed offset.
pub(crate) async fn head(s: &TestServer, token: &str, location: &str) -> (u16, Option<u64>) {
    let res = s
        .client_with(token)
        .head(s.url(location))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .send()
        .await
        .expect("HEAD");
    let offset = res
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (res.status().as_u16(), offset)
}

/// The stored content of `sha`, as the server serves it.
async fn content(s: &TestServer, sha: &str) -> Bytes {
    let mut res = s
        .client()
        .get(s.url(&format!("/v1/assets/{sha}/content")))
        .send()
        .await
        .expect("GET content");
    assert_eq!(res.status().as_u16(), 200);
    res.body().limit(64 * MIB).await.expect("body")
}

pub async fn a_session_in_parts_reports_its_committed_offset(kind: Kind) {
    let s = TestServer::start_with(kind, small_parts).await;
    let res = s
        .client()
        .request(awc::http::Method::OPTIONS, s.url("/v1/uploads"))
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(header(res.headers(), "Tus-Version"), "1.0.0");
    assert!(header(res.headers(), "Tus-Extension").contains("creation"));

    let body = random(12 * MIB + 100, 1);
    let sha = sha256_hex(&body);
    let (status, headers, json) = create(&s, &s.token, &sha, "video.mp4", body.len()).await;
    assert_eq!(status, 201, "{json}");
    let location = header(&headers, "Location");
    assert!(location.starts_with("/v1/uploads/"), "{location}");
    assert!(!header(&headers, "Upload-Expires").is_empty());
    assert_eq!(head(&s, &s.token, &location).await, (200, Some(0)));
    // Nothing is visible before the last byte.
    assert_eq!(s.get_json(&format!("/v1/assets/{sha}")).await.0, 404);

    // 7 MiB: one 5 MiB part is committed; the 2 MiB tail is too small to keep.
    let (status, offset, _) = patch(&s, &s.token, &location, 0, &body[..7 * MIB]).await;
    assert_eq!((status, offset), (204, Some(5 * MIB as u64)));
    assert_eq!(
        head(&s, &s.token, &location).await,
        (200, Some(5 * MIB as u64))
    );
    let (status, offset, _) = patch(&s, &s.token, &location, 5 * MIB, &body[5 * MIB..]).await;
    assert_eq!((status, offset), (204, Some(body.len() as u64)));

    let (status, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(
        (status, json["size"].as_u64()),
        (200, Some(body.len() as u64)),
        "{json}"
    );
    assert_eq!(json["name"], "video.mp4");
    assert_eq!(content(&s, &sha).await, Bytes::from(body));
    assert_eq!(
        head(&s, &s.token, &location).await.0,
        404,
        "a finished session is gone"
    );
    s.stop().await;
}

pub async fn content_already_stored_needs_no_byte(kind: Kind) {
    let s = TestServer::start_with(kind, small_parts).await;
    let body = random(6 * MIB, 2);
    let sha = s.upload("first.bin", &body).await["asset"]["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let (status, headers, json) = create(&s, &s.token, &sha, "again.bin", body.len()).await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(header(&headers, "Asset-Catalog-Present"), "true");
    assert_eq!(json["created"], false);
    let location = header(&headers, "Location");
    assert_eq!(
        head(&s, &s.token, &location).await,
        (200, Some(body.len() as u64))
    );
    let (_, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(
        json["sighting_count"], 2,
        "the second place is recorded: {json}"
    );
    s.stop().await;
}

pub async fn bad_input_is_refused_and_nothing_unverified_shows(kind: Kind) {
    let s = TestServer::start_with(kind, small_parts).await;
    let body = random(6 * MIB, 3);
    let sha = sha256_hex(&body);
    let (_, headers, _) = create(&s, &s.token, &sha, "x.bin", body.len()).await;
    let location = header(&headers, "Location");

    // No protocol version, wrong body type, wrong offset, past the length.
    let res = s
        .client()
        .patch(s.url(&location))
        .insert_header(("Content-Type", "application/offset+octet-stream"))
        .insert_header(("Upload-Offset", "0"))
        .send_body("x")
        .await
        .expect("patch");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 412, ErrorCode::TusVersion);
    let res = s
        .client()
        .patch(s.url(&location))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .insert_header(("Upload-Offset", "0"))
        .send_body("x")
        .await
        .expect("patch");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 415, ErrorCode::UnsupportedMediaType);
    let (status, _, json) = patch(&s, &s.token, &location, 7, b"xyz").await;
    assert_error(status, &json, 409, ErrorCode::OffsetMismatch);
    let mut long = body.clone();
    long.extend_from_slice(b"one byte too many");
    let (status, _, json) = patch(&s, &s.token, &location, 0, &long).await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    assert_eq!(
        head(&s, &s.token, &location).await.1,
        Some(0),
        "nothing past the length was kept"
    );

    // Another token's session does not exist for it.
    let other = s.create_token_with("other", &["upload"]).await;
    assert_eq!(head(&s, &other, &location).await.0, 404);
    let (status, _, json) = patch(&s, &other, &location, 0, &body).await;
    assert_error(status, &json, 404, ErrorCode::UnknownUpload);

    // A declared hash that does not match: 422 on the last byte, nothing stored.
    let lie = sha256_hex(b"something else");
    let (_, headers, _) = create(&s, &s.token, &lie, "lie.bin", body.len()).await;
    let liar = header(&headers, "Location");
    let (status, _, json) = patch(&s, &s.token, &liar, 0, &body).await;
    assert_error(status, &json, 422, ErrorCode::HashMismatch);
    assert_eq!(s.get_json(&format!("/v1/assets/{lie}")).await.0, 404);
    assert_eq!(
        head(&s, &s.token, &liar).await.0,
        404,
        "the failed session is gone"
    );

    // Terminated: gone, and a PATCH after it is refused.
    let res = s
        .client()
        .delete(s.url(&location))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status().as_u16(), 204);
    let (status, _, json) = patch(&s, &s.token, &location, 0, &body).await;
    assert_error(status, &json, 404, ErrorCode::UnknownUpload);

    // Creation needs sha256 and a length within the limit.
    let res = s
        .client()
        .post(s.url("/v1/uploads"))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .insert_header(("Upload-Length", "10"))
        .insert_header(("Upload-Metadata", format!("filename {}", b64("a"))))
        .send()
        .await
        .expect("POST");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    let huge = (s.config().server.max_upload_bytes + 1) as usize;
    let (status, _, json) = create(&s, &s.token, &sha, "huge.bin", huge).await;
    assert_error(status, &json, 413, ErrorCode::PayloadTooLarge);
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.assert_no_staging().await;
    s.stop().await;
}

/// tuspy (PyPI), a tus client nobody here wrote: cut off after one chunk,
/// a new process resumes from the offset the server reports.
#[actix_web::test]
async fn a_third_party_tus_client_resumes_after_a_cut() {
    let Ok(python) = std::env::var("TUSPY_PYTHON") else {
        panic!("TUSPY_PYTHON is not set: run scripts/test.sh, which installs tuspy into a venv");
    };
    let s = TestServer::start_with(Kind::File, small_parts).await;
    let dir = tempfile::tempdir().expect("dir");
    let body = random(11 * MIB + 7, 4);
    let sha = sha256_hex(&body);
    let file = dir.path().join("interop.bin");
    std::fs::write(&file, &body).expect("write");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/tus_interop.py"
    );
    let storage = dir.path().join("tus-urls.json");
    let run = |phase: &str| {
        let out = std::process::Command::new(&python)
            .args([script, &s.url(""), &s.token])
            .arg(&file)
            .args([sha.as_str()])
            .arg(&storage)
            .arg(phase)
            .output()
            .expect("run tuspy");
        assert!(
            out.status.success(),
            "tuspy {phase}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).expect("utf8");
        serde_json::from_str::<serde_json::Value>(line.trim()).expect("json")
    };
    let first = run("first");
    assert_eq!(first["offset"], 5 * MIB, "{first}");
    assert_eq!(
        s.get_json(&format!("/v1/assets/{sha}")).await.0,
        404,
        "not before the last byte"
    );
    let resumed = run("resume");
    assert_eq!(
        resumed["resumed_at"],
        5 * MIB,
        "tuspy asked the server where to go on: {resumed}"
    );
    assert_eq!(resumed["url"], first["url"], "the same session");
    let (status, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(
        (status, json["size"].as_u64()),
        (200, Some(body.len() as u64)),
        "{json}"
    );
    assert_eq!(content(&s, &sha).await, Bytes::from(body));
    s.stop().await;
}
