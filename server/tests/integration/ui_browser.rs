//! The web UI in a real browser: Debian's Chromium, driven over WebDriver
//! (testkit::browser), against the real server (in-process, file store, its
//! background jobs making real thumbnails) with real uploaded files. One
//! walk through everything a user does, a screenshot of each page kept in
//! `target/ui-screenshots/` (`ui-*.png`) for a person to look at:
//! sign in, the grid with thumbnails, search, filters, the list view, an
//! image and an audio asset, download, the overview, drag-and-drop upload,
//! delete, the phone layout, dark mode, keyboard focus, sign out; and stored
//! HTML and SVG whose scripts never run, neither on their asset page nor
//! when their content URL is opened (a beacon server counts any request a
//! script would make).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};
use testkit::browser::Browser;

use crate::jobs::{photo_with_exif, settled, wav};
use crate::support::{Kind, TestServer, sha256_hex};

/// Counts every request made to it: any hit means a stored script ran.
struct Beacon {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Beacon {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the beacon");
        let port = listener.local_addr().expect("beacon address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                eprintln!("beacon hit: {line}");
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        Self { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// HTML and SVG that would call the beacon (and retitle the page) if they ran.
fn hostile(beacon: &Beacon) -> (String, String) {
    let url = format!("http://127.0.0.1:{}", beacon.port);
    let html = format!(
        "<!doctype html><title>x</title><script>document.title='pwned';fetch('{url}/html-script')</script>\
         <img src=nothing onerror=\"fetch('{url}/html-onerror')\"><p>hello</p>"
    );
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"fetch('{url}/svg-onload')\" width=\"10\" height=\"10\">\
         <script>fetch('{url}/svg-script');document.title='pwned'</script><rect width=\"10\" height=\"10\"/></svg>"
    );
    (html, svg)
}

/// A file name that is markup: shown as text, it changes nothing.
const HOSTILE_NAME: &str = "<img src=x onerror=document.title='pwned'>.txt";

pub(crate) async fn js(b: &Browser, script: &str) -> Value {
    b.client()
        .execute(script, vec![])
        .await
        .expect("execute script")
}

/// Poll `script` (returning true when done) for up to 30 s; a page being
/// replaced counts as not yet.
pub(crate) async fn wait_js(b: &Browser, script: &str, what: &str) {
    for _ in 0..300 {
        if let Ok(Value::Bool(true)) = b.client().execute(script, vec![]).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshot(&format!("ui-FAILED-{}", what.replace(' ', "-")))
        .await;
    panic!("waited 30 s for {what}");
}

pub(crate) async fn goto(b: &Browser, s: &TestServer, path: &str) {
    b.client().goto(&s.url(path)).await.expect("navigate");
}

async fn find(b: &Browser, css: &str) -> fantoccini::elements::Element {
    b.client().find(Locator::Css(css)).await.expect(css)
}

/// Press the search form's button and wait for `param` in the URL.
async fn search(b: &Browser, param: &str) {
    click(b, ".filters button[type=submit]").await;
    let script = format!("return location.search.includes('{param}')");
    wait_js(b, &script, &format!("{param} in the URL")).await;
}

async fn assert_no_sideways_scroll(b: &Browser) {
    let fits = js(
        b,
        "return document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    assert_eq!(fits, json!(true), "the page scrolls sideways");
}

pub(crate) async fn wait_for(b: &Browser, css: &str, what: &str) {
    b.client()
        .wait()
        .for_element(Locator::Css(css))
        .await
        .expect(what);
}

async fn click(b: &Browser, css: &str) {
    b.client()
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

async fn path_of(b: &Browser) -> String {
    let url = b.client().current_url().await.expect("url");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Type `token` into the sign-in form shown and send it.
pub(crate) async fn submit_token(b: &Browser, token: &str) {
    find(b, "#token")
        .await
        .send_keys(token)
        .await
        .expect("type");
    click(b, "main form button[type=submit]").await;
}

pub(crate) async fn names_shown(b: &Browser) -> Vec<String> {
    let v = js(b, "return [...document.querySelectorAll('.grid .name, table.list td:first-child a')].map(e => e.textContent)").await;
    serde_json::from_value(v).expect("names")
}

pub(crate) async fn no_console_errors(b: &Browser, page: &str) {
    let errors = b.console_errors().await;
    assert!(
        errors.is_empty(),
        "{page}: console errors (CSP violations?): {errors:#?}"
    );
}

pub(crate) async fn shot(b: &Browser, name: &str) {
    let path = b.screenshot(name).await;
    eprintln!("screenshot: {}", path.display());
}

#[actix_web::test]
async fn a_user_walks_through_the_web_ui_in_chromium() {
    let s = TestServer::start(Kind::File).await;
    let beacon = Beacon::start();
    let (html, svg) = hostile(&beacon);
    let logo = std::fs::read("/usr/share/pixmaps/debian-logo.png").expect("debian logo (debconf)");
    let notes = "Shopping list\n- bread\n- <b>not bold</b> & not a tag\n".repeat(3);
    let files: [(&str, Vec<u8>); 7] = [
        (HOSTILE_NAME, b"a name is text".to_vec()),
        ("debian-logo.png", logo),
        ("holiday.jpg", photo_with_exif()),
        ("tone.wav", wav(3)),
        ("notes.txt", notes.clone().into_bytes()),
        ("evil.html", html.into_bytes()),
        ("evil.svg", svg.into_bytes()),
    ];
    let mut sha = std::collections::HashMap::new();
    for (name, body) in &files {
        let json = s.upload(name, body).await;
        sha.insert(
            *name,
            json["asset"]["sha256"].as_str().expect("sha").to_owned(),
        );
    }
    for name in ["debian-logo.png", "holiday.jpg"] {
        assert_eq!(settled(&s, &sha[name]).await["thumbnail"], true, "{name}");
    }
    for _ in 0..300 {
        if s.get_json("/v1/assets?kind=audio").await.1["items"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let b = Browser::start().await;

    // Sign in: the grid sends an unknown browser to the form, and back.
    goto(&b, &s, "/").await;
    assert_eq!(path_of(&b).await, "/ui/sign-in?next=%2F");
    shot(&b, "ui-01-sign-in").await;
    submit_token(&b, &s.token).await;
    wait_for(&b, ".grid", "the grid after sign-in").await;
    assert_eq!(path_of(&b).await, "/");

    // The grid: every upload, newest first, thumbnails loaded for the images.
    let shown = names_shown(&b).await;
    assert_eq!(
        shown,
        [
            "evil.svg",
            "evil.html",
            "notes.txt",
            "tone.wav",
            "holiday.jpg",
            "debian-logo.png",
            HOSTILE_NAME,
        ]
    );
    wait_js(&b, "return [...document.querySelectorAll('.grid img:not(.icon)')].filter(i => i.complete && i.naturalWidth > 0).length === 2", "two thumbnails").await;
    let thumb = js(&b, "const i = document.querySelector('.grid img:not(.icon)'); return [i.getAttribute('src'), i.naturalWidth, i.naturalHeight]").await;
    assert!(
        thumb[0]
            .as_str()
            .expect("src")
            .ends_with("/thumbnail?size=256"),
        "{thumb}"
    );
    no_console_errors(&b, "grid").await;
    assert_eq!(
        b.client().title().await.expect("title"),
        "Assets · asset-catalog"
    );
    shot(&b, "ui-02-grid").await;

    // Search narrows it; the URL holds the query.
    find(&b, "#q").await.send_keys("logo").await.expect("type");
    search(&b, "q=logo").await;
    assert_eq!(names_shown(&b).await, ["debian-logo.png"]);
    shot(&b, "ui-03-search").await;

    // Filters: kind, client, dates (a bookmarked URL works the same).
    find(&b, "#q").await.clear().await.expect("clear");
    let kind = find(&b, "#kind").await;
    kind.select_by_value("audio").await.expect("select");
    search(&b, "kind=audio").await;
    assert_eq!(names_shown(&b).await, ["tone.wav"]);
    shot(&b, "ui-04-filter-kind").await;
    goto(&b, &s, "/?client=nobody").await;
    assert!(names_shown(&b).await.is_empty());
    goto(&b, &s, "/?client=test-host&kind=image").await;
    // SVG is an image too (shown as an icon: it is never rendered).
    assert_eq!(
        names_shown(&b).await,
        ["evil.svg", "holiday.jpg", "debian-logo.png"]
    );
    goto(&b, &s, "/?to=2001-01-01").await;
    assert!(
        names_shown(&b).await.is_empty(),
        "nothing was uploaded before 2001"
    );
    goto(&b, &s, "/?taken_from=2024-05-06&taken_to=2024-05-06").await;
    assert_eq!(names_shown(&b).await, ["holiday.jpg"], "EXIF capture date");
    goto(&b, &s, "/?from=yesterday").await;
    let error = js(&b, "return document.querySelector('.error').textContent").await;
    assert!(
        error.as_str().expect("text").contains("not a date like"),
        "{error}"
    );
    // That page's 400 is the one console error expected.
    let errors = b.console_errors().await;
    assert!(
        errors.iter().all(|e| e.contains("400 (Bad Request)")),
        "{errors:?}"
    );

    // The dense list view.
    goto(&b, &s, "/").await;
    click(&b, ".views a:last-child").await;
    wait_for(&b, "table.list", "list").await;
    assert_eq!(names_shown(&b).await.len(), 7);
    shot(&b, "ui-05-list").await;

    // An image's page: the 1024 thumbnail as preview, EXIF facts.
    goto(&b, &s, "/").await;
    b.client().find(Locator::LinkText("holiday.jpg")).await.ok();
    click(&b, &format!("a[href='/ui/assets/{}']", sha["holiday.jpg"])).await;
    wait_js(&b, "const i = document.querySelector('.preview img'); return !!i && i.complete && i.naturalWidth > 0", "the image preview").await;
    let facts = js(&b, "return document.querySelector('.facts').textContent")
        .await
        .to_string();
    for fact in [
        "Canon EOS 5D",
        "2024-05-06 07:08 UTC",
        "200 × 320",
        "image/jpeg",
        &sha["holiday.jpg"],
    ] {
        assert!(facts.contains(fact), "{fact} in {facts}");
    }
    no_console_errors(&b, "image asset").await;
    shot(&b, "ui-06-asset-image").await;

    // An audio file plays (after a real click: the browser's autoplay rule).
    goto(&b, &s, &format!("/ui/assets/{}", sha["tone.wav"])).await;
    click(&b, "h1.title").await;
    let played = b
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1]; const a = document.querySelector('audio'); a.muted = true;\
             a.play().then(() => setTimeout(() => done({t: a.currentTime, d: a.duration, paused: a.paused}), 800))\
             .catch(e => done({error: String(e)}));",
            vec![],
        )
        .await
        .expect("play");
    assert!(
        played["t"].as_f64().is_some_and(|t| t > 0.2),
        "the audio did not play: {played}"
    );
    assert!(
        played["d"].as_f64().is_some_and(|d| (d - 3.0).abs() < 0.1),
        "{played}"
    );
    shot(&b, "ui-07-asset-audio").await;

    // Download gives the same bytes.
    goto(&b, &s, &format!("/ui/assets/{}", sha["notes.txt"])).await;
    let pre = js(&b, "return document.querySelector('pre.text').textContent").await;
    assert_eq!(
        pre.as_str(),
        Some(notes.as_str()),
        "the text preview shows the text, tags as text"
    );
    click(&b, "a[download]").await;
    let downloaded = b.wait_for_download("notes.txt").await;
    assert_eq!(
        std::fs::read(downloaded).expect("read download"),
        notes.as_bytes()
    );
    shot(&b, "ui-08-asset-text").await;

    // Stored HTML and SVG never run: not on their pages, not at their content URL.
    for name in ["evil.html", "evil.svg"] {
        goto(&b, &s, &format!("/ui/assets/{}", sha[name])).await;
        let title = b.client().title().await.expect("title");
        assert_eq!(title, format!("{name} · asset-catalog"));
        let text = js(&b, "return document.querySelector('pre.text').textContent").await;
        assert!(
            text.as_str().expect("text").contains("<script>"),
            "shown as text: {text}"
        );
        shot(&b, &format!("ui-09-asset-{}", name.replace('.', "-"))).await;
        let content = s.url(&format!("/v1/assets/{}/content", sha[name]));
        let _ = b.client().goto(&content).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A name that is markup is text on its page too.
    goto(&b, &s, &format!("/ui/assets/{}", sha[HOSTILE_NAME])).await;
    let title = b.client().title().await.expect("title");
    assert_eq!(title, format!("{HOSTILE_NAME} · asset-catalog"));
    let h1 = js(&b, "return document.querySelector('h1.title').textContent").await;
    assert_eq!(h1, json!(HOSTILE_NAME));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(beacon.hits(), 0, "a stored script ran");

    // The overview.
    goto(&b, &s, "/ui/overview").await;
    let tiles = js(&b, "return document.querySelector('.tiles').textContent")
        .await
        .to_string();
    assert!(tiles.contains('7') && tiles.contains("assets"), "{tiles}");
    let clients = js(
        &b,
        "return document.querySelector('table.list').textContent",
    )
    .await
    .to_string();
    assert!(clients.contains("test-host"), "{clients}");
    assert_eq!(
        js(&b, "return document.querySelectorAll('.chart rect').length").await,
        json!(30)
    );
    no_console_errors(&b, "overview").await;
    shot(&b, "ui-10-overview").await;

    // Upload by drag and drop (a real DataTransfer dropped on the zone).
    goto(&b, &s, "/").await;
    let dropped = "dropped from the browser\n";
    b.client()
        .execute(
            "const dt = new DataTransfer(); dt.items.add(new File([arguments[0]], 'dropped.txt', {type: 'text/plain'}));\
             document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
            vec![json!(dropped)],
        )
        .await
        .expect("drop");
    wait_js(&b, "return [...document.querySelectorAll('.grid .name')].some(e => e.textContent === 'dropped.txt')", "the dropped file in the grid").await;
    let dropped_sha = sha256_hex(dropped.as_bytes());
    let (status, json) = s.get_json(&format!("/v1/assets/{dropped_sha}")).await;
    assert_eq!(
        (status, json["size"].as_u64()),
        (200, Some(dropped.len() as u64)),
        "{json}"
    );
    shot(&b, "ui-11-after-drop").await;

    // Delete as admin, confirmed.
    goto(&b, &s, &format!("/ui/assets/{dropped_sha}")).await;
    shot(&b, "ui-12-asset-delete-form").await;
    click(&b, "input[name=confirm]").await;
    click(&b, "button.destructive").await;
    wait_for(&b, ".notice", "the notice").await;
    assert_eq!(
        s.get_json(&format!("/v1/assets/{dropped_sha}")).await.0,
        404
    );
    assert!(!names_shown(&b).await.contains(&"dropped.txt".to_owned()));
    shot(&b, "ui-13-deleted").await;

    // Keyboard: the first Tab reaches the skip link, the grid's cards are links.
    b.client()
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys("\u{e004}")
        .await
        .expect("tab");
    let focused = js(&b, "return document.activeElement.className").await;
    assert_eq!(focused, json!("skip"));
    shot(&b, "ui-14-keyboard-skip-link").await;

    // A phone: one column of controls, no sideways scrolling.
    b.set_size(390, 844).await;
    goto(&b, &s, "/").await;
    assert_no_sideways_scroll(&b).await;
    shot(&b, "ui-15-phone-grid").await;
    goto(&b, &s, &format!("/ui/assets/{}", sha["holiday.jpg"])).await;
    assert_no_sideways_scroll(&b).await;
    shot(&b, "ui-16-phone-asset").await;
    b.set_size(1280, 900).await;

    // Dark mode follows the system.
    b.prefer_dark(true).await;
    goto(&b, &s, "/").await;
    let bg = js(&b, "return getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(bg, json!("rgb(22, 23, 24)"));
    shot(&b, "ui-17-dark-grid").await;
    goto(&b, &s, &format!("/ui/assets/{}", sha["holiday.jpg"])).await;
    shot(&b, "ui-18-dark-asset").await;
    b.set_size(390, 844).await;
    goto(&b, &s, "/").await;
    shot(&b, "ui-19-dark-phone-grid").await;
    b.set_size(1280, 900).await;
    b.prefer_dark(false).await;

    // Sign out: the session is gone on the server.
    click(&b, ".who button").await;
    wait_for(&b, "#token", "sign-in form").await;
    goto(&b, &s, "/ui/overview").await;
    assert_eq!(path_of(&b).await, "/ui/sign-in?next=%2Fui%2Foverview");
    shot(&b, "ui-20-signed-out").await;

    assert_eq!(beacon.hits(), 0, "a stored script ran");
    b.close().await;
    s.stop().await;
}
