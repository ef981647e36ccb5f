use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;
use testkit::browser::Browser;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>testkit</title><link rel="icon" href="data:,"></head>
<body>
<h1 id="greeting">Hello, browser</h1>
<a id="download" href="/files/report.bin">report</a>
</body></html>"#;

/// Refused by its own Content-Security-Policy: a console error.
const CSP_PAGE: &str = r#"<!doctype html>
<html><head><title>csp</title><link rel="icon" href="data:,"></head>
<body><script>document.title = "ran";</script></body></html>"#;

/// Not UTF-8, and long enough to take more than one read.
fn report_bytes() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

/// A tiny HTTP server for the browser: the page, an attachment, a page
/// with a strict CSP; 404 for the rest. One thread per connection, since
/// Chromium opens connections it may never use.
struct Site {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test site");
        let port = listener.local_addr().expect("test site address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(stream));
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop up so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers, up to the blank line; the requests here have no body.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let (status, headers, body): (&str, &[&str], Vec<u8>) = match path {
        "/" => (
            "200 OK",
            &["Content-Type: text/html; charset=utf-8"],
            PAGE.into(),
        ),
        "/files/report.bin" => (
            "200 OK",
            &[
                "Content-Type: application/octet-stream",
                "Content-Disposition: attachment; filename=\"report.bin\"",
            ],
            report_bytes(),
        ),
        "/csp" => (
            "200 OK",
            &[
                "Content-Type: text/html; charset=utf-8",
                "Content-Security-Policy: script-src 'none'",
            ],
            CSP_PAGE.into(),
        ),
        _ => ("404 Not Found", &["Content-Type: text/plain"], "no".into()),
    };
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

async fn prefers_dark(browser: &Browser) -> bool {
    browser
        .client()
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        )
        .await
        .expect("evaluate matchMedia")
        == json!(true)
}

#[tokio::test]
async fn browser_reads_a_page_takes_a_screenshot_and_emulates_dark_mode() {
    let site = Site::start();
    let browser = Browser::start().await;
    let client = browser.client();
    client.goto(&site.url("/")).await.expect("open the page");
    let greeting = client
        .find(Locator::Css("#greeting"))
        .await
        .expect("find #greeting")
        .text()
        .await
        .expect("read #greeting");
    assert_eq!(greeting, "Hello, browser");

    let size = client
        .execute("return [innerWidth, innerHeight]", vec![])
        .await
        .expect("read the viewport size");
    assert_eq!(size, json!([1280, 900]), "the laptop's viewport");
    let path = browser.screenshot("testkit-browser").await;
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("png"));
    let png = std::fs::read(&path).expect("read the screenshot back");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );

    browser.set_size(390, 844).await;
    let size = client
        .execute("return [innerWidth, innerHeight]", vec![])
        .await
        .expect("read the viewport size");
    assert_eq!(size, json!([390, 844]), "the phone layout's viewport");

    assert!(!prefers_dark(&browser).await, "light by default");
    browser.prefer_dark(true).await;
    assert!(prefers_dark(&browser).await, "dark once asked for");
    client.refresh().await.expect("reload the page");
    assert!(prefers_dark(&browser).await, "still dark after a reload");
    browser.prefer_dark(false).await;
    assert!(!prefers_dark(&browser).await, "light again");

    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn browser_download_lands_in_the_download_dir() {
    let site = Site::start();
    let browser = Browser::start().await;
    let client = browser.client();
    client.goto(&site.url("/")).await.expect("open the page");
    client
        .find(Locator::Css("#download"))
        .await
        .expect("find the download link")
        .click()
        .await
        .expect("click the download link");
    let path = browser.wait_for_download("report.bin").await;
    assert_eq!(path.parent(), Some(browser.download_dir()));
    assert!(
        std::fs::read(&path).expect("read the download") == report_bytes(),
        "the download differs from what was served"
    );
    browser.close().await;
}

#[tokio::test]
async fn browser_reports_csp_violations_as_console_errors() {
    let site = Site::start();
    let browser = Browser::start().await;
    let client = browser.client();
    client.goto(&site.url("/csp")).await.expect("open the page");
    assert_eq!(
        client.title().await.expect("read the title"),
        "csp",
        "the inline script did not run"
    );
    let errors = browser.console_errors().await;
    assert!(
        errors
            .iter()
            .any(|error| error.contains("Content Security Policy")),
        "{errors:?}"
    );
    assert_eq!(
        browser.console_errors().await,
        Vec::<String>::new(),
        "each error is reported once"
    );
    // Dropped without close(): chromedriver and Chromium are killed.
}
