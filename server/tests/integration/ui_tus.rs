//! The web UI's tus routes (`/ui/uploads`, `/ui/uploads/{id}`) without a
//! browser, where each rule can be broken on purpose: a session with the
//! `upload` scope and the CSRF rule (token in `X-CSRF-Token`, same origin)
//! on every method, JSON errors (401 without a session, not a redirect),
//! `Location` under `/ui/uploads/`, content already stored answered at
//! creation, the metrics' route label; and the same cookie still refused on
//! every write of the API's `/v1/uploads`.

use asset_catalog_server::auth::Scope;
use awc::http::header::HeaderMap;
use base64::Engine as _;

use crate::support::{Kind, TestServer, json_of, sha256_hex};
use crate::ui_session::{browser, csrf_of, get, pair, sign_in, token};

/// A signed-in browser: its cookie, CSRF token and `Origin`.
struct Session {
    cookie: String,
    csrf: String,
    origin: String,
}

async fn session(s: &TestServer, scopes: &[Scope]) -> Session {
    let origin = format!("http://{}", s.addr);
    let (_, text) = token(s, scopes).await;
    let (status, set_cookie, body) = sign_in(s, &text, Some(&origin)).await;
    assert_eq!(status, 303, "{body}");
    let cookie = pair(&set_cookie);
    let (_, page, _) = get(s, "/", &cookie).await;
    Session {
        csrf: csrf_of(&page),
        cookie,
        origin,
    }
}

/// Which of the browser's headers a request carries.
#[derive(Clone, Copy)]
struct Sent {
    cookie: bool,
    csrf: bool,
    origin: Option<&'static str>,
}

const ALL: Sent = Sent {
    cookie: true,
    csrf: true,
    origin: None,
};

/// One tus request as the page's script sends it (`origin`: `None` is this
/// server's, `Some("")` sends none).
async fn tus(
    s: &TestServer,
    who: &Session,
    sent: Sent,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, HeaderMap, serde_json::Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = browser()
        .request(method, s.url(path))
        .insert_header(("Tus-Resumable", "1.0.0"));
    match sent.origin {
        None => req = req.insert_header(("Origin", who.origin.as_str())),
        Some("") => {}
        Some(other) => req = req.insert_header(("Origin", other)),
    }
    if sent.cookie {
        req = req.insert_header(("Cookie", who.cookie.as_str()));
    }
    if sent.csrf {
        req = req.insert_header(("X-CSRF-Token", who.csrf.as_str()));
    }
    for (name, value) in headers {
        req = req.insert_header((*name, value.as_str()));
    }
    let res = req.send_body(body).await.expect("tus request");
    let headers = res.headers().clone();
    let (status, json) = json_of(res).await;
    (status, headers, json)
}

fn creation(sha: &str, length: usize) -> Vec<(&'static str, String)> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        ("Upload-Length", length.to_string()),
        (
            "Upload-Metadata",
            format!("sha256 {},filename {}", b64(sha), b64("dropped.bin")),
        ),
    ]
}

/// `PATCH path` with the whole `body` from offset 0.
async fn patch(
    s: &TestServer,
    who: &Session,
    sent: Sent,
    path: &str,
    body: &[u8],
) -> (u16, HeaderMap, serde_json::Value) {
    let headers = [
        ("Upload-Offset", "0".to_owned()),
        ("Content-Type", "application/offset+octet-stream".into()),
    ];
    tus(s, who, sent, "PATCH", path, &headers, body.to_vec()).await
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

/// Sum of the request counts of `method` on `route`, over every status.
pub(crate) async fn requests(s: &TestServer, method: &str, route: &str) -> u64 {
    answered(s, method, route, "").await
}

/// The request count of `method` on `route` answered with `status` (a
/// prefix: "" for all).
async fn answered(s: &TestServer, method: &str, route: &str, status: &str) -> u64 {
    let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}");
    s.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("asset_catalog_http_request_duration_seconds_count{"))
        .filter(|l| l.contains(&labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[actix_web::test]
async fn the_ui_tus_routes_need_a_session_its_csrf_token_and_the_upload_scope() {
    let s = TestServer::start(Kind::File).await;
    let uploader = session(&s, &[Scope::Read, Scope::Upload]).await;
    let body = b"resumable from the web UI\n".repeat(4000);
    let sha = sha256_hex(&body);
    let create = creation(&sha, body.len());
    let post = |sent| tus(&s, &uploader, sent, "POST", "/ui/uploads", &create, vec![]);

    // Refused: no session (JSON 401, not a redirect), no CSRF token, another
    // origin, a cross-site fetch without Origin; nothing is created.
    let no_cookie = Sent {
        cookie: false,
        ..ALL
    };
    let (status, _, json) = post(no_cookie).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (401, Some("unauthorized")),
        "{json}"
    );
    let (status, _, json) = post(Sent { csrf: false, ..ALL }).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (403, Some("forbidden")),
        "{json}"
    );
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("security token"),
        "{json}"
    );
    let evil = Sent {
        origin: Some("http://evil.example"),
        ..ALL
    };
    let (status, _, json) = post(evil).await;
    assert_eq!(status, 403, "{json}");
    let cross_site = [&create[..], &[("Sec-Fetch-Site", "cross-site".into())]].concat();
    let no_origin = Sent {
        origin: Some(""),
        ..ALL
    };
    let (status, _, json) = tus(
        &s,
        &uploader,
        no_origin,
        "POST",
        "/ui/uploads",
        &cross_site,
        vec![],
    )
    .await;
    assert_eq!(status, 403, "{json}");
    let reader = session(&s, &[Scope::Read]).await;
    let (status, _, json) = tus(&s, &reader, ALL, "POST", "/ui/uploads", &create, vec![]).await;
    assert_eq!(status, 403, "a reader cannot upload: {json}");
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("`upload` scope"),
        "{json}"
    );
    assert_eq!(s.get_json(&format!("/v1/assets/{sha}")).await.0, 404);

    // Created, under /ui/uploads/; HEAD and PATCH obey the same rules.
    let (status, headers, json) = post(ALL).await;
    assert_eq!(status, 201, "{json}");
    let location = header(&headers, "location");
    assert!(location.starts_with("/ui/uploads/"), "{location}");
    assert_eq!(header(&headers, "tus-resumable"), "1.0.0");
    for sent in [Sent { csrf: false, ..ALL }, evil, no_cookie] {
        let (status, ..) = tus(&s, &uploader, sent, "HEAD", &location, &[], vec![]).await;
        assert!(status == 403 || status == 401, "HEAD {status}");
        let (status, ..) = patch(&s, &uploader, sent, &location, &body).await;
        assert!(status == 403 || status == 401, "PATCH {status}");
    }
    let (status, headers, _) = tus(&s, &uploader, ALL, "HEAD", &location, &[], vec![]).await;
    assert_eq!(
        (status, header(&headers, "upload-offset")),
        (200, "0".into())
    );
    let (status, headers, json) = patch(&s, &uploader, ALL, &location, &body).await;
    assert_eq!(status, 204, "{json}");
    assert_eq!(header(&headers, "asset-catalog-sha256"), sha);
    let (status, asset) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(
        (status, asset["size"].as_u64()),
        (200, Some(body.len() as u64)),
        "{asset}"
    );

    // Stored content is answered at creation, its Location under /ui/uploads/ too.
    let (status, headers, json) = post(ALL).await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(header(&headers, "asset-catalog-present"), "true");
    assert_eq!(header(&headers, "upload-offset"), body.len().to_string());
    assert_eq!(
        header(&headers, "location"),
        format!("/ui/uploads/present-{sha}")
    );

    // DELETE: only with the token, then the session is gone.
    let other = b"terminated".repeat(100);
    let create_other = creation(&sha256_hex(&other), other.len());
    let (_, headers, _) = tus(
        &s,
        &uploader,
        ALL,
        "POST",
        "/ui/uploads",
        &create_other,
        vec![],
    )
    .await;
    let doomed = header(&headers, "location");
    let (status, ..) = tus(
        &s,
        &uploader,
        Sent { csrf: false, ..ALL },
        "DELETE",
        &doomed,
        &[],
        vec![],
    )
    .await;
    assert_eq!(status, 403);
    let (status, ..) = tus(&s, &uploader, ALL, "DELETE", &doomed, &[], vec![]).await;
    assert_eq!(status, 204);
    let (status, ..) = tus(&s, &uploader, ALL, "HEAD", &doomed, &[], vec![]).await;
    assert_eq!(status, 404);

    // The requests are labelled with the UI's tus routes.
    let patches = |status| answered(&s, "PATCH", "/ui/uploads/{id}", status);
    assert_eq!(
        (
            patches("204").await,
            patches("403").await,
            patches("401").await
        ),
        (1, 2, 1)
    );
    assert!(requests(&s, "POST", "/ui/uploads").await >= 3);
    s.stop().await;
}

#[actix_web::test]
async fn a_session_cookie_still_cannot_write_the_api_uploads() {
    let s = TestServer::start(Kind::File).await;
    let uploader = session(&s, &[Scope::Read, Scope::Upload]).await;
    let body = b"not through the API".to_vec();
    let create = creation(&sha256_hex(&body), body.len());
    let (status, _, json) = tus(&s, &uploader, ALL, "POST", "/v1/uploads", &create, vec![]).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (401, Some("unauthorized")),
        "{json}"
    );
    let (_, headers, _) = tus(&s, &uploader, ALL, "POST", "/ui/uploads", &create, vec![]).await;
    let id = header(&headers, "location")
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();
    let api = format!("/v1/uploads/{id}");
    let (status, _, json) = patch(&s, &uploader, ALL, &api, &body).await;
    assert_eq!(status, 401, "{json}");
    let (status, ..) = tus(&s, &uploader, ALL, "DELETE", &api, &[], vec![]).await;
    assert_eq!(status, 401);
    // The session is untouched: the UI's own route still finishes it.
    let ui = format!("/ui/uploads/{id}");
    let (status, ..) = patch(&s, &uploader, ALL, &ui, &body).await;
    assert_eq!(status, 204);
    s.stop().await;
}
