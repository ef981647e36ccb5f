//! Issue 12's points about who writes what: sightings capped per asset and
//! paged, every write attributed to its token, tokens bound to a client,
//! an upload-only token that learns only whether content exists, and
//! per-token byte quotas and upload rates — against the real server.

use asset_catalog_proto::{ErrorCode, HEADER_CLIENT, HEADER_NAME, HEADER_PATH, encode_header_text};
use asset_catalog_server::auth::{Presented, Scope, Scopes};
use asset_catalog_server::index::{Index, TokenLimits};
use asset_catalog_server::token_admin;
use bytes::Bytes;

use crate::support::{Kind, TestServer, assert_error, json_of, sha256_hex};

/// A token with `scopes` and `limits`: its text and id.
async fn token(s: &TestServer, scopes: &[Scope], limits: TokenLimits) -> (String, String) {
    let t = token_admin::create(s.config(), "t", &Scopes::new(scopes.to_vec()), &limits)
        .await
        .expect("create token");
    (t.text, t.id)
}

/// PUT `body` as `client` at `path` with `token`.
async fn put_as(
    s: &TestServer,
    token: &str,
    client: Option<&str>,
    path: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut req = s
        .client_with(token)
        .put(s.url(&format!("/v1/assets/{}", sha256_hex(body))))
        .insert_header((HEADER_NAME, encode_header_text(name)))
        .insert_header((HEADER_PATH, encode_header_text(path)));
    if let Some(client) = client {
        req = req.insert_header((HEADER_CLIENT, client));
    }
    json_of(
        req.send_body(Bytes::copy_from_slice(body))
            .await
            .expect("PUT"),
    )
    .await
}

/// POST a sighting of `body` at `path` with `token`.
async fn sight_as(
    s: &TestServer,
    token: &str,
    client: &str,
    path: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let res = s
        .client_with(token)
        .post(s.url(&format!("/v1/assets/{}/sightings", sha256_hex(body))))
        .insert_header((HEADER_CLIENT, client))
        .send_json(&serde_json::json!({ "path": path, "name": name }))
        .await
        .expect("sighting");
    json_of(res).await
}

pub async fn sightings_are_capped_and_paged() {
    let s = TestServer::start_with(Kind::Memory, |c| c.server.max_sightings_per_asset = 25).await;
    let body = b"seen in many places";
    s.upload("first.txt", body).await;
    for i in 1..25 {
        let (status, json) = sight_as(&s, &s.token, "host", &format!("d{i:02}/x.txt"), body).await;
        assert_eq!(status, 200, "{json}");
    }
    let (status, json) = sight_as(&s, &s.token, "host", "one/too/many.txt", body).await;
    assert_error(status, &json, 409, ErrorCode::TooManySightings);
    let (status, json) = put_as(&s, &s.token, Some("host"), "again/too/many.txt", body).await;
    assert_error(status, &json, 409, ErrorCode::TooManySightings);
    // A place already recorded is refreshed, not refused.
    let (status, json) = sight_as(&s, &s.token, "host", "d03/x.txt", body).await;
    assert_eq!(status, 200, "{json}");

    let sha = sha256_hex(body);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&sightings_cursor={c}"));
        let (status, json) = s
            .get_json(&format!("/v1/assets/{sha}?sightings_limit=10{q}"))
            .await;
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["sighting_count"], 25);
        let page = json["sightings"].as_array().expect("sightings");
        assert!(page.len() <= 10);
        seen.extend(
            page.iter()
                .map(|p| p["path"].as_str().unwrap_or("").to_owned()),
        );
        match json["sightings_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (25, 25), "{seen:?}");
    assert_eq!(seen[0], "d03/x.txt", "most recent first");
    let (status, json) = s
        .get_json(&format!("/v1/assets/{sha}?sightings_cursor=zz"))
        .await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);
    s.stop().await;
}

pub async fn every_write_names_its_token() {
    let s = TestServer::start(Kind::File).await;
    let (uploader, uploader_id) = token(&s, &[Scope::Upload], TokenLimits::default()).await;
    let (sighter, sighter_id) = token(&s, &[Scope::Upload], TokenLimits::default()).await;
    let body = b"attributed content";
    let (status, _) = put_as(&s, &uploader, Some("a"), "a/one.txt", body).await;
    assert_eq!(status, 201);
    let (status, _) = sight_as(&s, &sighter, "b", "b/two.txt", body).await;
    assert_eq!(status, 200);
    let sha = sha256_hex(body);
    let (_, json) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(json["uploaded_by"], uploader_id.as_str(), "{json}");
    let by_path = |p: &str| {
        json["sightings"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["path"] == p))
            .map(|x| x["token"].clone())
    };
    assert_eq!(by_path("a/one.txt"), Some(uploader_id.clone().into()));
    assert_eq!(by_path("b/two.txt"), Some(sighter_id.clone().into()));
    // A reader sees the asset but not who wrote it.
    let (reader, _) = token(&s, &[Scope::Read], TokenLimits::default()).await;
    let res = s
        .client_with(&reader)
        .get(s.url(&format!("/v1/assets/{sha}")))
        .send()
        .await
        .expect("GET");
    let (_, seen) = json_of(res).await;
    assert!(seen.get("uploaded_by").is_none() && seen["sightings"][0].get("token").is_none());

    assert_eq!(s.delete(&sha).await.0, 204);
    let admin_id = Presented::parse(&s.token)
        .expect("admin token")
        .id
        .to_owned();
    let index = Index::open(s.config()).await.expect("index");
    let deletions = index
        .deletions(&sha.parse().expect("sha"))
        .await
        .expect("deletions");
    assert_eq!(deletions.len(), 1);
    assert_eq!(deletions[0].0.as_deref(), Some(admin_id.as_str()));
    s.stop().await;
}

pub async fn a_bound_token_speaks_only_for_its_client() {
    let s = TestServer::start(Kind::Memory).await;
    let bound = TokenLimits {
        client: Some("laptop".into()),
        ..TokenLimits::default()
    };
    let (t, _) = token(&s, &[Scope::Upload], bound).await;
    let (status, json) = put_as(&s, &t, Some("desktop"), "x/a.txt", b"from elsewhere").await;
    assert_error(status, &json, 403, ErrorCode::WrongClient);
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("laptop")),
        "{json}"
    );
    let (status, json) = sight_as(&s, &t, "desktop", "x/b.txt", b"from elsewhere").await;
    assert_error(status, &json, 403, ErrorCode::WrongClient);
    let (status, _) = put_as(&s, &t, Some("laptop"), "x/a.txt", b"its own").await;
    assert_eq!(status, 201);
    let (status, _) = put_as(&s, &t, None, "x/c.txt", b"unnamed client").await;
    assert_eq!(status, 201);
    let (_, json) = s
        .get_json(&format!("/v1/assets/{}", sha256_hex(b"unnamed client")))
        .await;
    assert_eq!(json["sightings"][0]["client"], "laptop", "{json}");
    assert_eq!(s.keys().await.len(), 2);
    s.stop().await;
}

pub async fn an_upload_token_learns_only_that_content_exists() {
    let s = TestServer::start(Kind::Memory).await;
    let body = b"someone else's holiday photo";
    let (status, _) = put_as(
        &s,
        &s.token,
        Some("alice"),
        "private/alice-secret.jpg",
        body,
    )
    .await;
    assert_eq!(status, 201);
    let (t, _) = token(&s, &[Scope::Upload], TokenLimits::default()).await;
    for (status, json) in [
        put_as(&s, &t, Some("bob"), "mine/copy.jpg", body).await,
        sight_as(&s, &t, "bob", "mine/other.jpg", body).await,
    ] {
        assert_eq!(status, 200, "{json}");
        let text = json.to_string();
        assert!(
            !text.contains("alice"),
            "another user's name leaked: {text}"
        );
        let asset = json.get("asset").unwrap_or(&json);
        assert_eq!(asset["sha256"], sha256_hex(body));
        assert_eq!(asset["sighting_count"], 0, "{text}");
    }
    let res = s
        .client_with(&t)
        .post(s.url("/v1/assets/check"))
        .send_json(&serde_json::json!({ "hashes": [sha256_hex(body), sha256_hex(b"new")] }))
        .await
        .expect("check");
    let (_, json) = json_of(res).await;
    assert_eq!(json, serde_json::json!({ "missing": [sha256_hex(b"new")] }));
    s.stop().await;
}

pub async fn quotas_refuse_with_stable_codes() {
    let s = TestServer::start(Kind::Memory).await;
    let limits = TokenLimits {
        max_bytes: Some(1000),
        ..TokenLimits::default()
    };
    let (t, _) = token(&s, &[Scope::Upload], limits).await;
    let first = vec![1u8; 600];
    assert_eq!(put_as(&s, &t, None, "q/first.bin", &first).await.0, 201);
    let (status, json) = put_as(&s, &t, None, "q/second.bin", &[2u8; 500]).await;
    assert_error(status, &json, 403, ErrorCode::QuotaExceeded);
    let (status, json) = put_as(&s, &t, None, "q/huge.bin", &[3u8; 2000]).await;
    assert_error(status, &json, 413, ErrorCode::QuotaExceeded);
    // Content already stored costs nothing.
    assert_eq!(put_as(&s, &t, None, "q/copy.bin", &first).await.0, 200);
    // A chunked body (no Content-Length) is held to the room that is left.
    let res = s
        .client_with(&t)
        .put(s.url(&format!("/v1/assets/{}", sha256_hex(&[4u8; 500]))))
        .send_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
            Bytes::from(vec![4u8; 500]),
        )]))
        .await
        .expect("chunked PUT");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 403, ErrorCode::QuotaExceeded);
    // A delete gives the bytes back.
    assert_eq!(s.delete(&sha256_hex(&first)).await.0, 204);
    assert_eq!(
        put_as(&s, &t, None, "q/second.bin", &[2u8; 500]).await.0,
        201
    );

    let rate = TokenLimits {
        rate_per_min: Some(3),
        ..TokenLimits::default()
    };
    let (t, _) = token(&s, &[Scope::Upload], rate).await;
    for i in 0..3u8 {
        assert_eq!(put_as(&s, &t, None, "r/x.bin", &[10 + i; 10]).await.0, 201);
    }
    let res = s
        .client_with(&t)
        .put(s.url(&format!("/v1/assets/{}", sha256_hex(&[20u8; 10]))))
        .send_body(vec![20u8; 10])
        .await
        .expect("PUT");
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 429, ErrorCode::RateLimited);
    assert!(
        retry_after.is_some_and(|secs| (1..=21).contains(&secs)),
        "{retry_after:?}"
    );
    s.stop().await;
}
