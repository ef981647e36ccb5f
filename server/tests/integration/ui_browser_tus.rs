//! Large files dropped on the browse page in a real Chromium go through the
//! UI's tus routes (`/ui/uploads`), with `[ui] resumable_above_bytes`
//! lowered to 1 MiB and 5 MiB parts: a 12 MiB file shows its progress (its
//! upload slowed down with DevTools' network emulation), survives a reload
//! midway and resumes from the server's committed offset when dropped again
//! (no second session), is hashed with `@noble/hashes` where Web Crypto is
//! missing (as on plain HTTP off localhost), and, dropped once more, is
//! answered at creation without a byte sent; a small file in the same drop
//! still goes by form post. Screenshots `ui-tus-*.png`.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::browser::Browser;

use crate::support::{Kind, TestServer, sha256_hex};
use crate::ui_browser::{
    goto, js, names_shown, no_console_errors, shot, submit_token, wait_for, wait_js,
};
use crate::ui_tus::requests;

const MIB: usize = 1 << 20;
const BIG: (&str, usize, u8) = ("big.bin", 12 * MIB, 1);

/// Drop files made in the page (`name`, size, seed: the bytes of [`bytes`])
/// on the drop zone; every text the upload log shows is kept in
/// `sessionStorage.log` (which outlives the reload after the upload).
async fn drop_files(b: &Browser, files: &[(&str, usize, u8)]) {
    b.client()
        .execute(
            "const make = ([name, n, seed]) => { const b = new Uint8Array(n);\
               for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 11) * 13 + seed) & 255;\
               return new File([b], name, {type: 'application/octet-stream', lastModified: 1700000000000}); };\
             const log = document.getElementById('upload-log');\
             new MutationObserver(() => { sessionStorage.log = (sessionStorage.log || '') + log.textContent + '\\n'; })\
               .observe(log, {childList: true, subtree: true, characterData: true});\
             const dt = new DataTransfer(); for (const f of arguments[0]) dt.items.add(make(f));\
             log.closest('form').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
            vec![json!(files)],
        )
        .await
        .expect("drop");
}

/// The bytes `drop_files` makes.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 7 + (i >> 11) * 13 + usize::from(seed)) & 255) as u8)
        .collect()
}

/// The URLs of the uploads this browser keeps for resuming (tus-js-client's
/// `localStorage` entries).
async fn stored_uploads(b: &Browser) -> Vec<String> {
    let v = js(b, "return Object.keys(localStorage).filter(k => k.startsWith('tus::')).map(k => JSON.parse(localStorage[k]).uploadUrl)").await;
    serde_json::from_value(v).expect("urls")
}

/// The committed offset of a session, asked through the API with the test's
/// token (the one the browser signed in with, so the session is its own).
async fn committed(s: &TestServer, id: &str) -> usize {
    let res = s
        .client()
        .head(s.url(&format!("/v1/uploads/{id}")))
        .insert_header(("Tus-Resumable", "1.0.0"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(res.status().as_u16(), 200, "HEAD /v1/uploads/{id}");
    let offset = res.headers().get("upload-offset").expect("Upload-Offset");
    offset.to_str().expect("ascii").parse().expect("a number")
}

async fn log_seen(b: &Browser) -> String {
    let v = js(b, "return sessionStorage.log || ''").await;
    v.as_str().unwrap_or_default().to_owned()
}

async fn wait_for_log(b: &Browser, text: &str) {
    let script = format!(
        "return (sessionStorage.log || '').includes({})",
        json!(text)
    );
    wait_js(b, &script, text).await;
}

#[actix_web::test]
async fn large_files_are_dropped_resumably_over_tus_in_chromium() {
    let s = TestServer::start_with(Kind::File, |c| {
        c.ui.resumable_above_bytes = MIB as u64;
        c.storage.part_size_bytes = 5 * MIB as u64;
        c.server.max_upload_bytes = 1 << 30;
    })
    .await;
    let b = Browser::start().await;
    goto(&b, &s, "/").await;
    submit_token(&b, &s.token).await;
    wait_for(&b, "#drop[data-resumable-above='1048576']", "the drop zone").await;

    // A 12 MiB file at 2 MiB/s: hashed, then uploaded with progress shown.
    b.throttle_uploads(Some(2 * MIB as u32)).await;
    drop_files(&b, &[BIG]).await;
    wait_js(&b, "return /big\\.bin: [2-9][0-9] % uploaded/.test(document.getElementById('upload-log').textContent)", "upload progress").await;
    no_console_errors(&b, "uploading").await;
    shot(&b, "ui-tus-01-progress").await;

    // The page reloads midway once a part is committed; the same file
    // dropped again resumes there (HEAD, then PATCH), in the same session.
    let urls = stored_uploads(&b).await;
    assert_eq!(urls.len(), 1, "{urls:?}");
    let id = urls[0].rsplit('/').next().expect("id").to_owned();
    assert!(urls[0].ends_with(&format!("/ui/uploads/{id}")), "{urls:?}");
    for _ in 0..300 {
        if committed(&s, &id).await >= 5 * MIB {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    goto(&b, &s, "/").await;
    js(&b, "sessionStorage.log = ''; return true").await;
    let offset = committed(&s, &id).await;
    assert!((5 * MIB..BIG.1).contains(&offset), "cut at {offset}");
    drop_files(&b, &[BIG]).await;
    wait_js(&b, "return /big\\.bin: (resuming|[0-9]+ % uploaded)/.test(document.getElementById('upload-log').textContent)", "the resumed upload").await;
    shot(&b, "ui-tus-02-resumed").await;
    wait_for_log(&b, "big.bin: uploaded").await;
    wait_js(&b, "return [...document.querySelectorAll('.grid .name')].some(e => e.textContent === 'big.bin')", "big.bin in the grid").await;
    let log = log_seen(&b).await;
    let first = log
        .lines()
        .filter(|l| l.contains("% uploaded"))
        .filter_map(|l| {
            l.split(": ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .next()
        .expect("progress after the reload");
    assert!(first >= 100 * offset / BIG.1, "{log}");
    assert_eq!(requests(&s, "POST", "/ui/uploads").await, 1, "one session");
    assert!(
        requests(&s, "HEAD", "/ui/uploads/{id}").await >= 1,
        "asked for the offset"
    );
    let big = bytes(BIG.1, BIG.2);
    let sha = sha256_hex(&big);
    let (status, asset) = s.get_json(&format!("/v1/assets/{sha}")).await;
    assert_eq!(
        (status, asset["size"].as_u64()),
        (200, Some(BIG.1 as u64)),
        "{asset}"
    );
    assert_eq!(
        stored_uploads(&b).await,
        Vec::<String>::new(),
        "forgotten when done"
    );

    // Without Web Crypto (plain HTTP off localhost): hashed incrementally by
    // @noble/hashes; the small file in the same drop goes by form post.
    b.throttle_uploads(None).await;
    js(&b, "sessionStorage.log = ''; Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined, configurable: true}); return true").await;
    let form_posts = requests(&s, "POST", "/ui/upload").await;
    drop_files(&b, &[("noble.bin", 9 * MIB, 2), ("small.bin", 200_000, 3)]).await;
    wait_for_log(&b, "small.bin: uploaded").await;
    wait_js(&b, "return document.readyState === 'complete' && document.querySelectorAll('.grid .name').length === 3", "three in the grid").await;
    let log = log_seen(&b).await;
    assert!(log.contains("noble.bin: hashing, 44 %"), "{log}");
    assert_eq!(requests(&s, "POST", "/ui/upload").await, form_posts + 1);
    for (n, seed) in [(9 * MIB, 2), (200_000, 3)] {
        let sha = sha256_hex(&bytes(n, seed));
        let (status, asset) = s.get_json(&format!("/v1/assets/{sha}")).await;
        assert_eq!(
            (status, asset["size"].as_u64()),
            (200, Some(n as u64)),
            "{asset}"
        );
    }

    // Dropped again: stored already, answered at creation, no byte sent.
    let patches = requests(&s, "PATCH", "/ui/uploads/{id}").await;
    js(&b, "sessionStorage.log = ''; return true").await;
    drop_files(&b, &[BIG]).await;
    wait_for_log(&b, "big.bin: already in the catalog").await;
    wait_js(
        &b,
        "return document.readyState === 'complete' && !!document.querySelector('.grid')",
        "the reload",
    )
    .await;
    assert_eq!(requests(&s, "PATCH", "/ui/uploads/{id}").await, patches);
    assert_eq!(stored_uploads(&b).await, Vec::<String>::new());
    assert_eq!(names_shown(&b).await, ["small.bin", "noble.bin", "big.bin"]);
    no_console_errors(&b, "after the uploads").await;
    shot(&b, "ui-tus-03-grid").await;
    let scripts = js(&b, "return typeof window.tus").await;
    assert_eq!(
        scripts,
        Value::from("undefined"),
        "a page loads tus only for a large file"
    );
    b.close().await;
    s.stop().await;
}
