//! Bearer tokens and abuse limits against the real server (in-process, file
//! store): every route × {no token, bad token, revoked token, wrong scope,
//! right scope}, printed as a matrix; a slow sender (head and body) gets 408
//! and stores nothing; the concurrent-upload cap gives 429 with Retry-After;
//! oversized headers give 431.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::http::header;
use asset_catalog_proto::{ErrorCode, HEADER_NAME};
use asset_catalog_server::auth::{Presented, Scope, Scopes};
use asset_catalog_server::index::Index;
use asset_catalog_server::index::TokenLimits;
use asset_catalog_server::token_admin;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Kind, TestServer, assert_error, json_of, parse_response, sha256_hex};

const CASES: [&str; 5] = [
    "no token",
    "bad token",
    "revoked",
    "wrong scope",
    "right scope",
];

/// One row of the matrix.
struct Route {
    method: &'static str,
    path: String,
    /// `None`: open route.
    needs: Option<Scope>,
    body: Option<(String, Bytes)>,
}

async fn token(s: &TestServer, name: &str, scopes: &[Scope]) -> String {
    token_admin::create(
        s.config(),
        name,
        &Scopes::new(scopes.to_vec()),
        &TokenLimits::default(),
    )
    .await
    .expect("create token")
    .text
}

/// The token that lacks `scope` (admin-only routes: upload + read).
fn wrong_for(scope: Scope) -> &'static [Scope] {
    match scope {
        Scope::Read => &[Scope::Upload],
        Scope::Upload => &[Scope::Read],
        Scope::Admin => &[Scope::Upload, Scope::Read],
    }
}

fn routes(a: &str, b: &str) -> Vec<Route> {
    let json =
        |v: serde_json::Value| Some(("application/json".to_owned(), Bytes::from(v.to_string())));
    let boundary = "bndry";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\nform body\r\n--{boundary}--\r\n"
    );
    let r = |method, path: String, needs, body| Route {
        method,
        path,
        needs,
        body,
    };
    vec![
        r("GET", "/healthz".into(), None, None),
        r("GET", "/readyz".into(), None, None),
        r("GET", "/metrics".into(), Some(Scope::Read), None),
        r("GET", "/v1/assets".into(), Some(Scope::Read), None),
        r("GET", format!("/v1/assets/{a}"), Some(Scope::Read), None),
        r("HEAD", format!("/v1/assets/{a}"), Some(Scope::Read), None),
        r(
            "GET",
            format!("/v1/assets/{a}/content"),
            Some(Scope::Read),
            None,
        ),
        r(
            "HEAD",
            format!("/v1/assets/{a}/content"),
            Some(Scope::Read),
            None,
        ),
        r(
            "PUT",
            format!("/v1/assets/{}", sha256_hex(b"put body")),
            Some(Scope::Upload),
            Some((
                "application/octet-stream".into(),
                Bytes::from_static(b"put body"),
            )),
        ),
        r(
            "POST",
            "/v1/assets".into(),
            Some(Scope::Upload),
            Some((
                format!("multipart/form-data; boundary={boundary}"),
                Bytes::from(form),
            )),
        ),
        r(
            "POST",
            "/v1/assets/check".into(),
            Some(Scope::Upload),
            json(serde_json::json!({"hashes": [a]})),
        ),
        r(
            "POST",
            format!("/v1/assets/{a}/sightings"),
            Some(Scope::Upload),
            json(serde_json::json!({"path": "x/y.txt", "name": "y.txt"})),
        ),
        r(
            "DELETE",
            format!("/v1/assets/{b}"),
            Some(Scope::Admin),
            None,
        ),
    ]
}

async fn call(
    s: &TestServer,
    route: &Route,
    token: Option<&str>,
) -> (u16, serde_json::Value, bool) {
    let client = match token {
        Some(t) => s.client_with(t),
        None => awc::Client::builder().disable_timeout().finish(),
    };
    let method = awc::http::Method::from_bytes(route.method.as_bytes()).expect("method");
    let req = client
        .request(method, s.url(&route.path))
        .insert_header((HEADER_NAME, "m.txt"));
    let res = match &route.body {
        Some((ct, body)) => {
            req.insert_header((header::CONTENT_TYPE, ct.as_str()))
                .send_body(body.clone())
                .await
        }
        None => req.send().await,
    }
    .expect("request");
    let bearer = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .is_some_and(|v| v.as_bytes().starts_with(b"Bearer"));
    let mut res = res;
    let status = res.status().as_u16();
    let body = res.body().limit(1 << 20).await.expect("body");
    // HEAD has no body, /metrics is OpenMetrics text.
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json, bearer)
}

fn check(route: &Route, case: &str, status: u16, json: &serde_json::Value, bearer: bool) {
    let what = format!("{} {} / {case}", route.method, route.path);
    let denied = |want_status: u16, code: ErrorCode| {
        assert_eq!(status, want_status, "{what}: {json}");
        if route.method != "HEAD" {
            assert_error(status, json, want_status, code);
        }
    };
    match (route.needs, case) {
        (None, _) | (Some(_), "right scope") => {
            assert!((200..300).contains(&status), "{what}: {status} {json}")
        }
        (Some(_), "wrong scope") => denied(403, ErrorCode::Forbidden),
        (Some(_), _) => {
            denied(401, ErrorCode::Unauthorized);
            assert!(bearer, "{what}: 401 without WWW-Authenticate: Bearer");
        }
    }
}

pub async fn route_scope_matrix() {
    let s = TestServer::start(Kind::File).await;
    let (a, b) = (sha256_hex(b"asset a"), sha256_hex(b"asset b"));
    s.upload("a.txt", b"asset a").await;
    s.upload("b.txt", b"asset b").await;
    let revoked = token(&s, "revoked", &[Scope::Admin]).await;
    let id = Presented::parse(&revoked).expect("parse").id.to_owned();
    token_admin::revoke(s.config(), &id).await.expect("revoke");
    let bad = format!("acat_{id}_{}", "0".repeat(64));
    let mut table = String::from(
        "| route | no token | bad token | revoked | wrong scope | right scope |\n|---|---|---|---|---|---|\n",
    );
    for route in routes(&a, &b) {
        let needs = route.needs.unwrap_or(Scope::Read);
        let wrong = token(&s, "wrong", wrong_for(needs)).await;
        let right = token(&s, "right", &[needs]).await;
        let tokens = [
            None,
            Some(bad.as_str()),
            Some(revoked.as_str()),
            Some(wrong.as_str()),
            Some(right.as_str()),
        ];
        let label = route.needs.map_or("open".to_owned(), |s| s.to_string());
        let _ = write!(
            table,
            "| {} {} ({label}) |",
            route.method,
            route.path.replace(&a, "{A}").replace(&b, "{B}")
        );
        for (case, token) in CASES.iter().zip(tokens) {
            let (status, json, bearer) = call(&s, &route, token).await;
            check(&route, case, status, &json, bearer);
            let _ = write!(table, " {status} |");
        }
        table.push('\n');
    }
    println!("route × token matrix (as run):\n{table}");
    s.stop().await;
}

pub async fn revocation_applies_to_the_next_request() {
    let s = TestServer::start(Kind::Memory).await;
    let t = token(&s, "short-lived", &[Scope::Read]).await;
    let (status, _) = json_of(
        s.client_with(&t)
            .get(s.url("/v1/assets"))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(status, 200);
    // A second handle, like the `token revoke` process, writes the revocation.
    let other = Index::open(s.config()).await.expect("open index");
    let id = Presented::parse(&t).expect("parse").id.to_owned();
    assert!(other.revoke_token(&id).await.expect("revoke"));
    let (status, json) = json_of(
        s.client_with(&t)
            .get(s.url("/v1/assets"))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_error(status, &json, 401, ErrorCode::Unauthorized);
    assert!(
        json["message"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{json}"
    );
    s.stop().await;
}

async fn read_all(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut out)).await;
    out
}

pub async fn slow_senders_get_408_and_store_nothing() {
    let s = TestServer::start_with(Kind::File, |c| {
        c.server.body_stall_timeout_secs = 1;
        c.server.request_head_timeout_secs = 1;
    })
    .await;
    let body = vec![b'z'; 4096];
    let sha = sha256_hex(&body);
    // Body stall: the head and 100 bytes, then nothing.
    let mut stream = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\n{}Content-Length: {}\r\n\r\n",
        s.auth_line(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..100]).await.expect("part");
    let (status, json) = parse_response(&read_all(&mut stream).await);
    assert_error(status, &json, 408, ErrorCode::RequestTimeout);
    // Head stall: half a request line.
    let mut stream = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"PUT /v1/assets/")
        .await
        .expect("part of head");
    let (status, _) = parse_response(&read_all(&mut stream).await);
    assert_eq!(status, 408);
    s.assert_empty().await;
    s.stop().await;
}

pub async fn concurrent_upload_cap_gives_429() {
    let s = TestServer::start_with(Kind::Memory, |c| c.server.max_concurrent_uploads = 1).await;
    let body = vec![b'q'; 1 << 16];
    let sha = sha256_hex(&body);
    let mut first = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\n{}Content-Length: {}\r\n\r\n",
        s.auth_line(),
        body.len()
    );
    first.write_all(head.as_bytes()).await.expect("head");
    first.write_all(&body[..10]).await.expect("part");
    // Give the server a moment to pick the stalled upload up (not an assertion).
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The first upload holds the only permit once its handler runs.
    let other = sha256_hex(b"other");
    let mut refused = None;
    for _ in 0..400 {
        let res = s
            .client()
            .put(s.url(&format!("/v1/assets/{other}")))
            .send_body("other")
            .await
            .expect("PUT");
        let retry_after = res.headers().get(header::RETRY_AFTER).is_some();
        let (status, json) = json_of(res).await;
        if status == 429 {
            refused = Some((json, retry_after));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (json, retry_after) = refused.expect("a second upload is refused while the first runs");
    assert_error(429, &json, 429, ErrorCode::TooManyRequests);
    assert!(retry_after, "429 carries Retry-After");
    first.write_all(&body[10..]).await.expect("rest");
    let (status, json) = parse_response(&read_some_response(&mut first).await);
    assert_eq!(status, 201, "{json}");
    let (status, json) = s.put(&other, "other", "other").await;
    assert_eq!(status, 201, "the permit was released: {json}");
    s.stop().await;
}

async fn read_some_response(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("}") {
        let n = stream.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

pub async fn oversized_headers_get_431() {
    let s = TestServer::start_with(Kind::Memory, |c| c.server.max_header_bytes = 4096).await;
    let res = s
        .client()
        .get(s.url("/v1/assets"))
        .insert_header(("x-padding", "p".repeat(8000)))
        .send()
        .await
        .expect("GET");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 431, ErrorCode::HeadersTooLarge);
    s.stop().await;
}
