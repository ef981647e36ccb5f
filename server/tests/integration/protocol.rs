//! HTTP protocol details that do not depend on the backend: `Expect:
//! 100-continue` (curl sends it for large bodies), an upload in flight when
//! shutdown begins completes, `/metrics` can be switched off, and the served
//! OpenAPI document matches the router.

use std::collections::BTreeSet;

use asset_catalog_proto::ErrorCode;
use asset_catalog_server::http::ROUTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Kind, TestServer, assert_error, parse_response, sha256_hex};

async fn read_some(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("server answered")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Open a raw `PUT /v1/assets/{sha}` with `Expect: 100-continue` and return
/// the connection once the server answered `100 Continue` (no body sent yet).
pub async fn put_until_continue(s: &TestServer, sha: &str, len: usize) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: t\r\n{}Content-Length: {len}\r\nExpect: 100-continue\r\n\r\n",
        s.auth_line(),
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let interim = read_some(&mut stream).await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim:?}");
    stream
}

#[actix_web::test]
async fn expect_continue_is_honoured() {
    let s = TestServer::start(Kind::Memory).await;
    let body = vec![b'x'; 2 << 20];
    let sha = sha256_hex(&body);
    let mut stream = put_until_continue(&s, &sha, body.len()).await;
    stream.write_all(&body).await.expect("body");
    stream.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.expect("response");
    let (status, json) = parse_response(&rest);
    assert_eq!(status, 201, "{json}");
    s.stop().await;
}

#[actix_web::test]
async fn upload_in_flight_at_shutdown_completes() {
    let s = TestServer::start(Kind::Memory).await;
    let body = vec![7u8; 1 << 20];
    let sha = sha256_hex(&body);
    // "100 Continue" proves the request is in flight; then stop while the body is still coming.
    let mut stream = put_until_continue(&s, &sha, body.len()).await;
    stream.write_all(&body[..1000]).await.expect("first part");
    let store = s.store.clone();
    let stopping = actix_web::rt::spawn(s.stop());
    stream.write_all(&body[1000..]).await.expect("rest");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let (status, json) = parse_response(&response);
    assert_eq!(status, 201, "{json}");
    stopping.await.expect("server stopped cleanly");
    let stored = object_store::ObjectStoreExt::head(&*store, &sha.as_str().into()).await;
    assert!(stored.is_ok(), "the drained upload was stored");
}

#[actix_web::test]
async fn metrics_can_be_disabled() {
    let s = TestServer::start_with(Kind::Memory, |c| c.metrics.enabled = false).await;
    let (status, json) = s.get_json("/metrics").await;
    assert_error(status, &json, 404, ErrorCode::RouteNotFound);
    s.stop().await;
}

/// The served OpenAPI document parses, lists exactly the router's routes and
/// methods, and every operation it documents is routed (no 404
/// `route_not_found`, no 405) — so the document cannot drift silently.
#[actix_web::test]
async fn openapi_document_lists_every_route() {
    let s = TestServer::start(Kind::Memory).await;
    // Served without a token, like /healthz.
    let mut res = super::support::client()
        .get(s.url("/v1/openapi.json"))
        .send()
        .await
        .expect("GET openapi");
    assert_eq!(res.status(), 200);
    let body = res.body().await.expect("body");
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let routed: BTreeSet<&str> = ROUTES.iter().map(|(path, _)| *path).collect();
    assert_eq!(documented, routed, "documented paths vs router paths");
    let empty = sha256_hex(b"");
    for (path, allow) in ROUTES {
        let methods: BTreeSet<String> = paths[path]
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| *k != "parameters")
            .map(|k| k.to_ascii_uppercase())
            .collect();
        let allowed: BTreeSet<String> = allow.split(", ").map(str::to_string).collect();
        assert_eq!(methods, allowed, "methods of {path}");
        for method in &methods {
            let url = s.url(&path.replace("{sha256}", &empty));
            let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
            let mut res = s
                .client()
                .request(method.clone(), url)
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            let body = res.body().await.expect("body");
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let route_missing =
                status == 405 || (status == 404 && json["code"] == "route_not_found");
            assert!(
                !route_missing,
                "{method} {path} is documented but not routed: {status} {json}"
            );
            assert!(
                paths[path][method.as_str().to_ascii_lowercase()]["responses"][status.to_string()]
                    .is_object(),
                "{method} {path} answered {status}, which the document does not list"
            );
        }
    }
    s.stop().await;
}
