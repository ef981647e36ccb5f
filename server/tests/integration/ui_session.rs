//! The web UI's session and CSRF rules against the real server (in-process,
//! file store, SQLite index): the cookie's attributes, pages that need a
//! session, a session cookie standing in for a bearer token on reads but
//! never on API writes, every state-changing form refused from another
//! origin, without its CSRF token or with another session's, and sessions
//! that end on sign-out, on expiry and when their token is revoked; one-time
//! sign-in links; `[ui] enabled = false`; and a session opened on one of two
//! servers sharing a PostgreSQL index used, and ended, on the other.

use std::time::Duration;

use asset_catalog_server::auth::{Scope, Scopes};
use asset_catalog_server::index::{Index, NewSession, SessionKind, TokenLimits};
use asset_catalog_server::token_admin;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::support::{Kind, TestServer};

/// A client that sends no token and follows no redirect.
pub(crate) fn browser() -> awc::Client {
    awc::Client::builder().disable_redirects().finish()
}

pub(crate) async fn token(s: &TestServer, scopes: &[Scope]) -> (String, String) {
    let t = token_admin::create(
        s.config(),
        "ui",
        &Scopes::new(scopes.to_vec()),
        &TokenLimits::default(),
    )
    .await
    .expect("create token");
    (t.id, t.text)
}

/// Sign in with `token`; returns the status, the `Set-Cookie` line and the body.
pub(crate) async fn sign_in(
    s: &TestServer,
    token: &str,
    origin: Option<&str>,
) -> (u16, String, String) {
    let mut req = browser().post(s.url("/ui/sign-in"));
    if let Some(origin) = origin {
        req = req.insert_header(("Origin", origin));
    }
    let mut res = req
        .send_form(&[("token", token), ("next", "/ui/overview")])
        .await
        .expect("sign in");
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&res.body().await.expect("body")).into_owned();
    (res.status().as_u16(), cookie, body)
}

/// `acat_session=…` from a `Set-Cookie` line.
pub(crate) fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

pub(crate) async fn get(
    s: &TestServer,
    path: &str,
    cookie: &str,
) -> (u16, String, awc::http::header::HeaderMap) {
    let mut res = browser()
        .get(s.url(path))
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .expect("get");
    let body =
        String::from_utf8_lossy(&res.body().limit(1 << 22).await.expect("body")).into_owned();
    (res.status().as_u16(), body, res.headers().clone())
}

/// The CSRF token the page's forms carry.
pub(crate) fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 32].to_owned()
}

async fn post_form(
    s: &TestServer,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> u16 {
    let mut req = browser()
        .post(s.url(path))
        .insert_header(("Cookie", cookie));
    for h in headers {
        req = req.insert_header(*h);
    }
    req.send_form(&form).await.expect("post").status().as_u16()
}

#[actix_web::test]
async fn sign_in_gives_a_strict_cookie_that_reads_but_never_writes_the_api() {
    let s = TestServer::start(Kind::File).await;
    let origin = format!("http://{}", s.addr);
    let asset = s.upload("a.txt", b"hello ui").await;
    let sha = asset["asset"]["sha256"].as_str().expect("sha").to_owned();

    let res = browser().get(s.url("/")).send().await.expect("get /");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers().get("location").expect("location"),
        "/ui/sign-in?next=%2F"
    );

    let (status, _, body) = sign_in(&s, "acat_nope", Some(&origin)).await;
    assert_eq!(status, 401);
    assert!(body.contains("that is not a token"), "{body}");
    let (_, upload_only) = token(&s, &[Scope::Upload]).await;
    let (status, cookie, body) = sign_in(&s, &upload_only, Some(&origin)).await;
    assert_eq!((status, cookie.as_str()), (403, ""));
    assert!(body.contains("cannot read the catalog"), "{body}");

    let (_, reader) = token(&s, &[Scope::Read]).await;
    let (status, set_cookie, _) = sign_in(&s, &reader, Some(&origin)).await;
    assert_eq!(status, 303);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Expires="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = pair(&set_cookie);

    let (status, page, headers) = get(&s, "/", &cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("a.txt"), "{page}");
    let csp = headers
        .get("content-security-policy")
        .expect("csp")
        .to_str()
        .expect("ascii");
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers.get("cache-control").expect("cache"), "no-store");
    // A reader's page has no upload zone and no delete form.
    assert!(!page.contains("id=\"drop\""));
    let (status, page, _) = get(&s, &format!("/ui/assets/{sha}"), &cookie).await;
    assert_eq!(status, 200);
    assert!(!page.contains("/delete"), "no delete form for a reader");

    // The cookie reads the API (thumbnails, content) …
    let (status, body, headers) = get(&s, &format!("/v1/assets/{sha}/content"), &cookie).await;
    assert_eq!((status, body.as_str()), (200, "hello ui"));
    assert_eq!(
        headers.get("content-security-policy").expect("csp"),
        "sandbox"
    );
    // … but never writes it, even from this origin.
    let res = browser()
        .delete(s.url(&format!("/v1/assets/{sha}")))
        .insert_header(("Cookie", cookie.as_str()))
        .insert_header(("Origin", origin.as_str()))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status().as_u16(), 401);
    let res = browser()
        .put(s.url(&format!("/v1/assets/{}", hex::encode(Sha256::digest(b"x")))))
        .insert_header(("Cookie", cookie.as_str()))
        .send_body("x")
        .await
        .expect("put");
    assert_eq!(res.status().as_u16(), 401);
    // An upload-only bearer token sees no page.
    let res = browser()
        .get(s.url("/"))
        .insert_header(("Authorization", format!("Bearer {upload_only}")))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 403);
    s.stop().await;
}

#[actix_web::test]
async fn every_form_needs_this_origin_and_its_sessions_csrf_token() {
    let s = TestServer::start(Kind::File).await;
    let origin = format!("http://{}", s.addr);
    let sha = s.upload("doomed.txt", b"delete me").await["asset"]["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let (_, admin) = token(&s, &[Scope::Admin]).await;
    let cookie = pair(&sign_in(&s, &admin, Some(&origin)).await.1);
    let other = pair(&sign_in(&s, &admin, Some(&origin)).await.1);
    let (_, page, _) = get(&s, &format!("/ui/assets/{sha}"), &cookie).await;
    let csrf = csrf_of(&page);
    let other_csrf = csrf_of(&get(&s, "/", &other).await.1);
    assert_ne!(csrf, other_csrf);
    let path = format!("/ui/assets/{sha}/delete");
    let ok_form = [("csrf", csrf.as_str()), ("confirm", "yes")];

    let evil = [("Origin", "http://evil.example")];
    assert_eq!(
        post_form(&s, &path, &cookie, &evil, &ok_form).await,
        403,
        "wrong origin"
    );
    let cross = [("Sec-Fetch-Site", "cross-site")];
    assert_eq!(
        post_form(&s, &path, &cookie, &cross, &ok_form).await,
        403,
        "cross-site, no Origin"
    );
    let same = [("Origin", origin.as_str())];
    assert_eq!(
        post_form(&s, &path, &cookie, &same, &[("confirm", "yes")]).await,
        403,
        "no token"
    );
    let foreign = [("csrf", other_csrf.as_str()), ("confirm", "yes")];
    assert_eq!(
        post_form(&s, &path, &cookie, &same, &foreign).await,
        403,
        "another session's token"
    );
    assert_eq!(
        post_form(&s, &path, &cookie, &same, &[("csrf", csrf.as_str())]).await,
        400,
        "not confirmed"
    );
    assert_eq!(
        s.get_json(&format!("/v1/assets/{sha}")).await.0,
        200,
        "still there"
    );

    // A sign-in posted from another site opens no session (login CSRF).
    let (status, set_cookie, _) = sign_in(&s, &admin, Some("http://evil.example")).await;
    assert_eq!((status, set_cookie.as_str()), (403, ""));
    // Sign-out is a form too.
    assert_eq!(
        post_form(
            &s,
            "/ui/sign-out",
            &cookie,
            &evil,
            &[("csrf", csrf.as_str())]
        )
        .await,
        403
    );

    assert_eq!(post_form(&s, &path, &cookie, &same, &ok_form).await, 303);
    assert_eq!(
        s.get_json(&format!("/v1/assets/{sha}")).await.0,
        404,
        "deleted"
    );
    s.stop().await;
}

#[actix_web::test]
async fn sessions_end_on_sign_out_expiry_and_token_revocation() {
    let s = TestServer::start(Kind::File).await;
    let origin = format!("http://{}", s.addr);
    let signed_in = |cookie: String| {
        let s = &s;
        async move { get(s, "/", &cookie).await.0 == 200 }
    };

    // Sign-out ends the session on the server, not just in the browser.
    let (_, reader) = token(&s, &[Scope::Read]).await;
    let cookie = pair(&sign_in(&s, &reader, Some(&origin)).await.1);
    let csrf = csrf_of(&get(&s, "/", &cookie).await.1);
    let same = [("Origin", origin.as_str())];
    assert_eq!(
        post_form(
            &s,
            "/ui/sign-out",
            &cookie,
            &same,
            &[("csrf", csrf.as_str())]
        )
        .await,
        303
    );
    assert!(
        !signed_in(cookie.clone()).await,
        "a signed-out cookie still worked"
    );

    // Revoking the token ends its sessions at once.
    let (id, text) = token(&s, &[Scope::Read]).await;
    let cookie = pair(&sign_in(&s, &text, Some(&origin)).await.1);
    assert!(signed_in(cookie.clone()).await);
    token_admin::revoke(s.config(), &id).await.expect("revoke");
    assert!(
        !signed_in(cookie.clone()).await,
        "a revoked token's session still worked"
    );
    let (status, _, _) = get(&s, "/v1/assets", &cookie).await;
    assert_eq!(status, 401);

    // An expired session is refused (written straight into the index, as a
    // server that signed it in a second ago would have).
    let index = Index::open_tool(s.config()).await.expect("index");
    let (id, _) = token(&s, &[Scope::Read]).await;
    let secret = "ab".repeat(32);
    let now = OffsetDateTime::now_utc();
    let session = NewSession {
        id_hash: Sha256::digest(secret.as_bytes()).into(),
        token_id: Some(id),
        scopes: Scopes::default(),
        csrf: "cd".repeat(16),
        created: now,
        expires: now + Duration::from_secs(1),
        kind: SessionKind::Session,
    };
    index.create_session(&session).await.expect("store session");
    index.finish_tool().expect("finish");
    let cookie = format!("acat_session={secret}");
    assert!(
        signed_in(cookie.clone()).await,
        "the session works while it lasts"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!signed_in(cookie).await, "an expired session still worked");
    s.stop().await;
}

#[actix_web::test]
async fn a_sign_in_link_works_once() {
    let s = TestServer::start(Kind::File).await;
    let origin = format!("http://{}", s.addr);
    let secret = token_admin::ui_link(s.config()).await.expect("link");
    let (status, page, _) = get(&s, &format!("/ui/sign-in/link?link={secret}"), "").await;
    assert_eq!(status, 200, "opening the link spends nothing");
    assert!(page.contains(&secret));
    let redeem = || async {
        let mut res = browser()
            .post(s.url("/ui/sign-in/link"))
            .insert_header(("Origin", origin.as_str()))
            .send_form(&[("link", secret.as_str())])
            .await
            .expect("redeem");
        let cookie = res
            .headers()
            .get("set-cookie")
            .map(|v| pair(v.to_str().expect("ascii")));
        let _ = res.body().await;
        (res.status().as_u16(), cookie)
    };
    let (status, cookie) = redeem().await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    let (status, page, _) = get(&s, "/", &cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("sign-in link (admin)"), "{page}");
    assert_eq!(
        redeem().await,
        (401, None),
        "a used link opened another session"
    );
    s.stop().await;
}

#[actix_web::test]
async fn the_ui_can_be_turned_off() {
    let s = TestServer::start_with(Kind::File, |c| c.ui.enabled = false).await;
    for path in ["/", "/ui/sign-in", "/ui/static/app.css"] {
        let res = browser().get(s.url(path)).send().await.expect("get");
        assert_eq!(res.status().as_u16(), 404, "{path}");
    }
    assert_eq!(s.get_json("/v1/assets").await.0, 200, "the API stays");
    s.stop().await;
}

/// `GET path` on fleet server `i` with `cookie`: status and body.
async fn fleet_get(
    fleet: &crate::fleet::Fleet,
    i: usize,
    path: &str,
    cookie: &str,
) -> (u16, String) {
    let mut res = browser()
        .get(fleet.url(i, path))
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .expect("get");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn every_server_sharing_the_index_honours_a_session() {
    let fleet = crate::fleet::start(2);
    let origin = |i: usize| fleet.url(i, "").trim_end_matches('/').to_owned();
    let reader = fleet.create_token("ui-fleet", &["read"]);
    let mut res = browser()
        .post(fleet.url(0, "/ui/sign-in"))
        .insert_header(("Origin", origin(0)))
        .send_form(&[("token", reader.as_str()), ("next", "/")])
        .await
        .expect("sign in on server 0");
    assert_eq!(res.status().as_u16(), 303);
    let cookie = pair(
        res.headers()
            .get("set-cookie")
            .expect("cookie")
            .to_str()
            .expect("ascii"),
    );
    let _ = res.body().await;
    let (status, page) = fleet_get(&fleet, 1, "/", &cookie).await;
    assert_eq!(status, 200, "server 1 did not know server 0's session");
    let csrf = csrf_of(&page);

    // Signed out on server 1: gone on server 0 too.
    let res = browser()
        .post(fleet.url(1, "/ui/sign-out"))
        .insert_header(("Cookie", cookie.as_str()))
        .insert_header(("Origin", origin(1)))
        .send_form(&[("csrf", csrf.as_str())])
        .await
        .expect("sign out on server 1");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        fleet_get(&fleet, 0, "/", &cookie).await.0,
        303,
        "server 0 still honoured it"
    );

    // A sign-in link printed by the CLI works once, on either server.
    let out = fleet.run(&["ui-link"]);
    let link = String::from_utf8(out.stdout).expect("utf8");
    let secret = link
        .trim()
        .rsplit("link=")
        .next()
        .expect("secret")
        .to_owned();
    let redeem = |i: usize| {
        browser()
            .post(fleet.url(i, "/ui/sign-in/link"))
            .insert_header(("Origin", origin(i)))
            .send_form(&[("link", secret.clone())])
    };
    assert_eq!(redeem(1).await.expect("redeem").status().as_u16(), 303);
    assert_eq!(
        redeem(0).await.expect("redeem again").status().as_u16(),
        401
    );
}
