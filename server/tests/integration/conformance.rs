//! The conformance suite: the same API behaviour over every storage backend.
//! Each function starts its own server on the given backend; the `suite!`
//! macro in `main.rs` instantiates them for memory, file and Garage S3.

use asset_catalog_proto::{
    AssetDetail, AssetPage, CheckResponse, ErrorCode, HEADER_CLIENT, HEADER_MTIME, HEADER_NAME,
    UploadResponse,
};
use asset_catalog_server::admin;
use asset_catalog_server::index::Index;
use awc::http::header;
use bytes::Bytes;

use crate::support::{Kind, TestServer, assert_error, json_of, sha256_hex};

pub async fn upload_then_read_back(kind: Kind) {
    let s = TestServer::start(kind).await;
    let body = b"hello, asset catalog\n";
    let sha = sha256_hex(body);
    let res = s
        .client()
        .put(s.url(&format!("/v1/assets/{sha}")))
        .insert_header((HEADER_NAME, "Holiday%20Notes.TXT"))
        .insert_header(("x-asset-path", "trips/2026/Holiday%20Notes.TXT"))
        .insert_header((HEADER_MTIME, "2026-11-24T21:00:00Z"))
        .insert_header((HEADER_CLIENT, "laptop-1"))
        .send_body(&body[..])
        .await
        .expect("PUT");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 201, "{json}");
    let up: UploadResponse = serde_json::from_value(json).expect("UploadResponse");
    assert!(up.created);
    assert_eq!(up.asset.key, format!("{sha}.txt"));
    assert_eq!(up.asset.content_type, "text/plain");
    assert_eq!(up.asset.name, "Holiday Notes.TXT");
    assert_eq!(up.asset.size, body.len() as u64);
    assert_eq!(s.keys().await, s.keys_of(&format!("{sha}.txt")));

    let head = s
        .client()
        .head(s.url(&format!("/v1/assets/{sha}")))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    let (status, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(status, 200);
    let detail: AssetDetail = serde_json::from_value(json).expect("detail");
    assert_eq!(detail.sightings.len(), 1);
    assert_eq!(detail.sightings[0].client, "laptop-1");
    assert_eq!(detail.sightings[0].path, "trips/2026/Holiday Notes.TXT");
    assert!(detail.sightings[0].mtime.is_some());

    let mut res = s
        .client()
        .get(s.url(&format!("/v1/assets/{sha}/content")))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
    let h = res.headers().clone();
    assert_eq!(res.body().await.expect("body"), Bytes::from_static(body));
    assert_eq!(
        h.get(header::ETAG).expect("etag"),
        format!("\"{sha}\"").as_str()
    );
    assert_eq!(h.get(header::CONTENT_TYPE).expect("ct"), "text/plain");
    assert_eq!(
        h.get(header::CACHE_CONTROL).expect("cc"),
        "public, max-age=31536000, immutable"
    );
    let cd = h
        .get(header::CONTENT_DISPOSITION)
        .expect("cd")
        .to_str()
        .expect("ascii");
    assert!(cd.contains("filename*=UTF-8''Holiday%20Notes.TXT"), "{cd}");
    s.stop().await;
}

pub async fn empty_file_round_trips(kind: Kind) {
    let s = TestServer::start(kind).await;
    let sha = sha256_hex(b"");
    let json = s.upload("empty.txt", b"").await;
    assert_eq!(json["asset"]["size"], 0);
    let mut res = s
        .client()
        .get(s.url(&format!("/v1/assets/{sha}/content")))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.body().await.expect("body").is_empty());
    let res = s
        .client()
        .get(s.url(&format!("/v1/assets/{sha}/content")))
        .insert_header((header::RANGE, "bytes=0-"))
        .send()
        .await
        .expect("GET range");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 416, ErrorCode::RangeNotSatisfiable);
    s.stop().await;
}

pub async fn same_content_is_stored_once(kind: Kind) {
    let s = TestServer::start(kind).await;
    let body = b"\x89PNG same bytes twice";
    let sha = sha256_hex(body);
    s.upload("first.jpg", body).await;
    let (status, json) = s.put(&sha, "second.png", Bytes::from_static(body)).await;
    assert_eq!(status, 200, "{json}");
    let up: UploadResponse = serde_json::from_value(json).expect("UploadResponse");
    assert!(!up.created);
    assert_eq!(
        up.asset.key,
        format!("{sha}.jpg"),
        "key keeps the first extension"
    );
    assert_eq!(up.asset.sighting_count, 2);
    assert_eq!(s.keys().await, s.keys_of(&format!("{sha}.jpg")));
    s.stop().await;
}

pub async fn concurrent_uploads_store_one_copy(kind: Kind) {
    let s = TestServer::start(kind).await;
    let body = crate::support::chunk(9, 3 << 20);
    let sha = sha256_hex(&body);
    let names = ["a.jpg", "b.png", "c.gif", "d.txt", "e", "f.bin"];
    let uploads = names.iter().map(|name| s.put(&sha, name, body.clone()));
    let results = futures_util::future::join_all(uploads).await;
    let created: Vec<bool> = results
        .iter()
        .map(|(status, json)| {
            assert!(*status == 201 || *status == 200, "{status} {json}");
            json["created"].as_bool().expect("created")
        })
        .collect();
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    let keys = s.keys().await;
    assert_eq!(keys.len(), s.keys_of(&sha).len(), "stored once: {keys:?}");
    let (_, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(json["sighting_count"], names.len());
    s.stop().await;
}

pub async fn hash_mismatch_stores_nothing(kind: Kind) {
    let s = TestServer::start(kind).await;
    let wrong = sha256_hex(b"something else");
    let (status, json) = s
        .put(&wrong, "a.txt", Bytes::from_static(b"actual bytes"))
        .await;
    assert_error(status, &json, 422, ErrorCode::HashMismatch);
    // Large enough for the multipart path: parts were sent, then aborted.
    let big = Bytes::from(vec![7u8; 12 * 1024 * 1024]);
    let (status, json) = s.put(&wrong, "big.bin", big).await;
    assert_error(status, &json, 422, ErrorCode::HashMismatch);
    s.assert_empty().await;
    let (status, json) = s.get_json(&format!("/v1/assets/{wrong}")).await;
    assert_error(status, &json, 404, ErrorCode::NotFound);
    s.stop().await;
}

pub async fn ranges_and_conditional_requests(kind: Kind) {
    let s = TestServer::start(kind).await;
    let body = b"0123456789";
    let sha = sha256_hex(body);
    s.upload("digits.txt", body).await;
    let url = s.url(&format!("/v1/assets/{sha}/content"));
    let get = |range: &'static str| {
        s.client()
            .get(url.clone())
            .insert_header((header::RANGE, range))
            .send()
    };
    let mut res = get("bytes=2-5").await.expect("range");
    assert_eq!(res.status().as_u16(), 206);
    assert_eq!(
        res.headers().get(header::CONTENT_RANGE).expect("cr"),
        "bytes 2-5/10"
    );
    assert_eq!(res.body().await.expect("body"), Bytes::from_static(b"2345"));
    let mut res = get("bytes=-3").await.expect("suffix");
    assert_eq!(res.body().await.expect("body"), Bytes::from_static(b"789"));
    let (status, json) = json_of(get("bytes=10-").await.expect("416")).await;
    assert_error(status, &json, 416, ErrorCode::RangeNotSatisfiable);
    let res = s
        .client()
        .get(url.clone())
        .insert_header((header::IF_NONE_MATCH, format!("\"{sha}\"")))
        .send()
        .await
        .expect("conditional");
    assert_eq!(res.status().as_u16(), 304);
    let res = s.client().head(url).send().await.expect("HEAD content");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get(header::CONTENT_LENGTH).expect("len"),
        "10"
    );
    s.stop().await;
}

pub async fn check_sightings_and_delete(kind: Kind) {
    let s = TestServer::start(kind).await;
    let a = s.upload("a.txt", b"aaa").await;
    let a_sha = a["asset"]["sha256"].as_str().expect("sha").to_string();
    let missing = sha256_hex(b"never uploaded");
    let res = s
        .client()
        .post(s.url("/v1/assets/check"))
        .send_json(&serde_json::json!({ "hashes": [a_sha, missing, missing] }))
        .await
        .expect("check");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 200, "{json}");
    let check: CheckResponse = serde_json::from_value(json).expect("check body");
    let missing_list: Vec<String> = check.missing.iter().map(|h| h.to_string()).collect();
    assert_eq!(missing_list, std::slice::from_ref(&missing));

    let sighting = serde_json::json!({ "path": "elsewhere/a copy.txt", "name": "a copy.txt" });
    let post = |sha: &str| {
        s.client()
            .post(s.url(&format!("/v1/assets/{sha}/sightings")))
            .insert_header((HEADER_CLIENT, "desktop-2"))
            .send_json(&sighting)
    };
    let (status, json) = json_of(post(&a_sha).await.expect("sighting")).await;
    assert_eq!(
        (status, json["sighting_count"].as_u64()),
        (200, Some(2)),
        "{json}"
    );
    let (status, json) = json_of(post(&missing).await.expect("sighting")).await;
    assert_error(status, &json, 404, ErrorCode::NotFound);

    assert_eq!(s.delete(&a_sha).await.0, 204);
    s.assert_empty().await;
    let (status, json) = s.get_json(&format!("/v1/assets/{a_sha}/content")).await;
    assert_error(status, &json, 404, ErrorCode::NotFound);
    s.stop().await;
}

pub async fn list_filters_and_pages(kind: Kind) {
    let s = TestServer::start(kind).await;
    s.upload("cat.jpg", b"meow").await;
    s.upload("dog.png", b"woof").await;
    s.upload("notes 100%.txt", b"text").await;
    s.upload("song.mp3", b"la la").await;
    s.upload("Cat-video.mp4", b"moving meow").await;
    let names = |p: &AssetPage| p.items.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&page(&s, "").await).len(), 5);
    assert_eq!(
        names(&page(&s, "name=cat").await),
        ["Cat-video.mp4", "cat.jpg"],
        "newest first, case-insensitive"
    );
    assert_eq!(names(&page(&s, "name=100%25").await), ["notes 100%.txt"]);
    assert_eq!(
        names(&page(&s, "content_type=image/").await),
        ["dog.png", "cat.jpg"]
    );
    assert_eq!(
        names(&page(&s, "content_type=audio/mpeg").await),
        ["song.mp3"]
    );
    assert_eq!(names(&page(&s, "client=test-host").await).len(), 5);
    assert!(page(&s, "client=nobody").await.items.is_empty());
    assert!(
        page(&s, "since=2100-01-01T00:00:00Z")
            .await
            .items
            .is_empty()
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".into(),
        };
        let p = page(&s, &q).await;
        assert!(p.items.len() <= 2);
        seen.extend(names(&p));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let (status, json) = s.get_json("/v1/assets?limit=0").await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    let (status, json) = s.get_json("/v1/assets?cursor=bogus").await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    let (status, json) = s.get_json("/v1/assets?colour=red").await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    s.stop().await;
}

async fn page(s: &TestServer, q: &str) -> AssetPage {
    let (status, json) = s.get_json(&format!("/v1/assets?{q}")).await;
    assert_eq!(status, 200, "{q}: {json}");
    serde_json::from_value(json).expect("page")
}

pub async fn form_upload_computes_the_hash(kind: Kind) {
    let s = TestServer::start(kind).await;
    let body = b"uploaded with curl -F";
    let boundary = "XyZzY-boundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\nphotos/x.txt\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n{}\r\n--{boundary}--\r\n",
        std::str::from_utf8(body).expect("utf8")
    );
    let send = || {
        s.client()
            .post(s.url("/v1/assets"))
            .insert_header((
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .send_body(form.clone())
    };
    let (status, json) = json_of(send().await.expect("form")).await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(json["asset"]["sha256"], sha256_hex(body));
    assert_eq!(json["asset"]["name"], "x.txt");
    let (status, _) = json_of(send().await.expect("form again")).await;
    assert_eq!(status, 200);
    let res = s
        .client()
        .post(s.url("/v1/assets"))
        .send_body("not a form")
        .await
        .expect("bad form");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 415, ErrorCode::UnsupportedMediaType);
    assert_eq!(
        s.keys().await,
        s.keys_of(&format!("{}.txt", sha256_hex(body)))
    );
    s.stop().await;
}

pub async fn reindex_rebuilds_from_the_bucket(kind: Kind) {
    let s = TestServer::start(kind).await;
    s.upload("one.txt", b"one").await;
    s.upload("two.bin", b"two").await;
    s.upload("été  2024 %20.jpg", b"four").await;
    // A description too long for object metadata goes to a sidecar everywhere.
    let long_name = format!("{}.txt", "n".repeat(1000));
    s.upload(&long_name, b"three").await;
    let long_sidecar = format!("meta/{}.json", sha256_hex(b"three"));
    assert!(
        s.keys().await.contains(&long_sidecar),
        "{:?}",
        s.keys().await
    );
    let (_, json) = s.get_json("/v1/assets").await;
    let before: AssetPage = serde_json::from_value(json).expect("page");
    // Content without a sidecar (e.g. written before a crash) is indexed too.
    let orphan = b"orphan bytes";
    let orphan_key = format!("{}.dat", sha256_hex(orphan));
    s.store
        .put(
            &orphan_key.as_str().into(),
            Bytes::from_static(orphan).into(),
        )
        .await
        .expect("put orphan");
    let fresh = tempfile::tempdir().expect("tempdir");
    let index = Index::open_sqlite(&fresh.path().join("rebuilt.sqlite3"))
        .await
        .expect("open");
    let report = admin::reindex_with(&s.storage, &index)
        .await
        .expect("reindex");
    assert_eq!((report.assets, report.described), (5, 4), "{report:?}");
    for asset in &before.items {
        let rebuilt = index
            .get(&asset.sha256)
            .await
            .expect("get")
            .expect("present");
        assert_eq!(
            (&rebuilt.key, &rebuilt.name, &rebuilt.content_type),
            (&asset.key, &asset.name, &asset.content_type)
        );
        assert_eq!(
            (rebuilt.size, rebuilt.first_seen, rebuilt.sighting_count),
            (asset.size, asset.first_seen, 1)
        );
    }
    s.stop().await;
}

use object_store::ObjectStoreExt as _;
