//! Bad input, over every backend: each case gets its status and stable code,
//! and the bucket holds nothing new afterwards.

use asset_catalog_proto::{ErrorCode, MAX_CHECK_BATCH};
use awc::http::header;
use bytes::Bytes;

use crate::support::{Kind, TestServer, assert_error, json_of, sha256_hex};

pub async fn bad_hashes_and_unknown_routes(kind: Kind) {
    let s = TestServer::start(kind).await;
    for bad in ["abc", "zz".repeat(32).as_str(), "..%2F..%2Fetc%2Fpasswd"] {
        let (status, json) = s.put(bad, "a.txt", Bytes::from_static(b"x")).await;
        assert_error(status, &json, 400, ErrorCode::InvalidHash);
    }
    let (status, json) = s.get_json("/v1/nope").await;
    assert_error(status, &json, 404, ErrorCode::RouteNotFound);
    let (status, json) = s.get_json("/../../etc/passwd").await;
    assert_error(status, &json, 404, ErrorCode::RouteNotFound);
    let res = s
        .client()
        .patch(s.url("/v1/assets"))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(
        res.headers().get(header::ALLOW).expect("allow"),
        "GET, POST"
    );
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 405, ErrorCode::MethodNotAllowed);
    s.assert_empty().await;
    s.stop().await;
}

pub async fn path_tricks_are_rejected_or_kept_as_text(kind: Kind) {
    let s = TestServer::start(kind).await;
    let body = b"tricky";
    let sha = sha256_hex(body);
    let put = |path: &'static str| {
        s.client()
            .put(s.url(&format!("/v1/assets/{sha}")))
            .insert_header(("x-asset-path", path))
            .send_body(&body[..])
    };
    for path in [
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "a%00b",
        "a%2F%2Fb",
    ] {
        let (status, json) = json_of(put(path).await.expect("PUT")).await;
        assert_error(status, &json, 400, ErrorCode::BadRequest);
    }
    let res = s
        .client()
        .put(s.url(&format!("/v1/assets/{sha}")))
        .insert_header(("x-asset-name", "..%2F..%2Fevil.sh"))
        .send_body(&body[..])
        .await
        .expect("PUT");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    s.assert_empty().await;
    // A name that merely looks odd is stored as text; the key uses only the hash.
    let res = s
        .client()
        .put(s.url(&format!("/v1/assets/{sha}")))
        .insert_header(("x-asset-name", "..%5C..%5Cwin.ini%0A"))
        .send_body(&body[..])
        .await
        .expect("PUT");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(json["asset"]["name"], "..\\..\\win.ini\n");
    assert_eq!(s.keys().await, s.keys_of(&sha));
    s.stop().await;
}

pub async fn malformed_json_and_huge_batches(kind: Kind) {
    let s = TestServer::start(kind).await;
    let post = |body: String| {
        s.client()
            .post(s.url("/v1/assets/check"))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .send_body(body)
    };
    let (status, json) = json_of(post("{\"hashes\": [".into()).await.expect("post")).await;
    assert_error(status, &json, 400, ErrorCode::InvalidJson);
    let (status, json) = json_of(
        post("{\"hashes\": [], \"extra\": 1}".into())
            .await
            .expect("post"),
    )
    .await;
    assert_error(status, &json, 400, ErrorCode::InvalidJson);
    let (status, json) = json_of(
        post("{\"hashes\": [\"nothex\"]}".into())
            .await
            .expect("post"),
    )
    .await;
    assert_error(status, &json, 400, ErrorCode::InvalidHash);
    let batch: Vec<String> = (0..=MAX_CHECK_BATCH)
        .map(|i| sha256_hex(&i.to_le_bytes()))
        .collect();
    let body = serde_json::to_string(&serde_json::json!({ "hashes": batch })).expect("json");
    let (status, json) = json_of(post(body).await.expect("post")).await;
    assert_error(status, &json, 413, ErrorCode::TooManyHashes);
    let res = s
        .client()
        .post(s.url("/v1/assets/check"))
        .send_body("{}")
        .await
        .expect("post");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 415, ErrorCode::UnsupportedMediaType);
    let sha = sha256_hex(b"x");
    let res = s
        .client()
        .post(s.url(&format!("/v1/assets/{sha}/sightings")))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .send_body("{\"path\": 3}")
        .await
        .expect("post");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 400, ErrorCode::InvalidJson);
    s.assert_empty().await;
    s.stop().await;
}

pub async fn oversize_bodies_get_413(kind: Kind) {
    let s = TestServer::start_with(kind, |c| c.server.max_upload_bytes = 1024 * 1024).await;
    let body = vec![1u8; 1024 * 1024 + 1];
    let sha = sha256_hex(&body);
    // Declared too large: refused before any byte is read.
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, json) = s.raw_exchange(&head, &[]).await;
    assert_error(status, &json, 413, ErrorCode::PayloadTooLarge);
    // Chunked, no length: refused once the limit is crossed.
    let head =
        format!("PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut chunked = Vec::new();
    for piece in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, json) = s.raw_exchange(&head, &chunked).await;
    assert_error(status, &json, 413, ErrorCode::PayloadTooLarge);
    s.assert_empty().await;
    s.stop().await;
}

pub async fn truncated_bodies_store_nothing(kind: Kind) {
    let s = TestServer::start(kind).await;
    for (declared, sent) in [(1000usize, 500usize), (20 << 20, 12 << 20)] {
        let full = crate::support::chunk(declared as u64, declared);
        let sha = sha256_hex(&full);
        let head = format!(
            "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n\r\n"
        );
        let (status, json) = s.raw_exchange(&head, &full[..sent]).await;
        assert_error(status, &json, 400, ErrorCode::IncompleteBody);
        let (status, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
        assert_error(status, &json, 404, ErrorCode::NotFound);
    }
    s.assert_empty().await;
    s.stop().await;
}

/// S3 only: the aborted multipart uploads of a hash mismatch and of a
/// truncated body leave no unfinished upload (no invisible parts) in Garage.
pub async fn aborted_uploads_leave_no_parts_in_s3(kind: Kind) {
    use object_store::ObjectStoreExt as _;

    let s = TestServer::start_with(kind, |c| c.storage.part_size_bytes = 16 << 20).await;
    let garage = s.garage.as_ref().expect("an S3 backend");
    let big = crate::support::chunk(1, 12 << 20);
    let wrong = sha256_hex(b"not these bytes");
    let (status, json) = s.put(&wrong, "big.bin", big.clone()).await;
    assert_error(status, &json, 422, ErrorCode::HashMismatch);
    let sha = sha256_hex(&big);
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        20 << 20
    );
    let (status, json) = s.raw_exchange(&head, &big).await;
    assert_error(status, &json, 400, ErrorCode::IncompleteBody);
    // Control: an upload left open is counted, so a zero below means something.
    let mut control = s
        .store
        .put_multipart(&"control".into())
        .await
        .expect("start control");
    control
        .put_part(Bytes::from(vec![0u8; 5 << 20]).into())
        .await
        .expect("control part");
    garage.wait_unfinished_multipart_uploads(1).await;
    control.abort().await.expect("abort control");
    garage.wait_unfinished_multipart_uploads(0).await;
    s.assert_empty().await;
    s.stop().await;
}

/// Found by `scripts/fuzz-api.sh`: `?cursor=` (empty) was refused as "not
/// one this server issued" while every other empty filter means "none".
#[actix_web::test]
async fn empty_cursor_means_the_first_page() {
    let s = TestServer::start(Kind::Memory).await;
    s.upload("a.txt", b"first page").await;
    let (status, json) = s
        .get_json("/v1/assets?name=&content_type=&client=&limit=100&cursor=")
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(1), "{json}");
    let (status, json) = s.get_json("/v1/assets?cursor=AAAA").await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    s.stop().await;
}

/// What actix rejects before a handler runs (extractor errors) is a JSON
/// `ErrorBody` with a stable code, for the exact inputs the fuzzer sends.
#[actix_web::test]
async fn extractor_rejections_are_json_errors() {
    use ErrorCode::{BadRequest, IncompleteBody, InvalidHash, InvalidJson, UnsupportedMediaType};
    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("multipart/form-data");
    let s = TestServer::start(Kind::Memory).await;
    let empty = s.upload("empty", b"").await;
    let sightings = format!(
        "/v1/assets/{}/sightings",
        empty["asset"]["sha256"].as_str().expect("sha256")
    );
    // One request a line: method, path, Content-Type, body, status, code.
    #[rustfmt::skip]
    let cases = [
        ("GET", "/v1/assets/%FF%FE", None, "", 400, InvalidHash),
        ("GET", "/v1/assets?limit=-1", None, "", 400, BadRequest),
        ("GET", "/v1/assets?limit=99999999999999999999999", None, "", 400, BadRequest),
        ("GET", "/v1/assets?bogus=1", None, "", 400, BadRequest),
        ("POST", "/v1/assets/check", Some("text/plain"), "{}", 415, UnsupportedMediaType),
        ("POST", "/v1/assets/check", Some(";;;"), "{}", 415, UnsupportedMediaType),
        ("POST", "/v1/assets/check", JSON, "{\"hashes\":", 400, InvalidJson),
        // Found by the 10-minute soak: serde read `[[]]` as {"hashes": []} (200).
        ("POST", "/v1/assets/check", JSON, "[[]]", 400, InvalidJson),
        ("POST", sightings.as_str(), JSON, "[\"a/b\", \"b\", null]", 400, InvalidJson),
        ("POST", "/v1/assets", None, "x", 415, UnsupportedMediaType),
        ("POST", "/v1/assets", FORM, "x", 415, UnsupportedMediaType),
        ("POST", "/v1/assets", Some("multipart/form-data; boundary=\"\""), "abc", 415, UnsupportedMediaType),
        ("POST", "/v1/assets", Some("multipart/form-data; boundary=abc"), "garbage", 400, IncompleteBody),
    ];
    for (method, path, content_type, body, want_status, want_code) in cases {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = s.client().request(method, s.url(path));
        if let Some(ct) = content_type {
            request = request.insert_header((header::CONTENT_TYPE, ct));
        }
        let (status, json) = json_of(request.send_body(body).await.expect("request")).await;
        assert_error(status, &json, want_status, want_code);
    }
    let (_, detail) = s.get_json(&sightings.replace("/sightings", "")).await;
    assert_eq!(
        detail["sighting_count"], 1,
        "no sighting was recorded: {detail}"
    );
    s.stop().await;
}
