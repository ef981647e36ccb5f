//! A real, headless Chromium for the web UI's tests, driven over WebDriver:
//! Debian's `chromedriver` on a free 127.0.0.1 port, a [`fantoccini`] client
//! talking plain HTTP to it, and a new temporary profile and download
//! directory per [`Browser`]. Unlike the other components this API is async
//! (fantoccini's is); tests are `#[tokio::test]`. Chromedriver runs in a
//! process group of its own, so dropping a [`Browser`] kills it and the
//! Chromium it started, then removes the temporary directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const MISSING: &str = "install chromium chromium-driver (scripts/test.sh does)";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The viewport [`Browser::start`] opens: a laptop's.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// One chromedriver with one headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    chromedriver: Child,
    port: u16,
    /// `profile/` (Chromium's user data), `downloads/`, `chromedriver.log`;
    /// removed after chromedriver is killed (fields drop after `Drop::drop`).
    dir: TempDir,
    downloads: PathBuf,
}

impl Browser {
    /// Start chromedriver on a free 127.0.0.1 port and a headless Chromium
    /// session with a 1280×900 viewport (see [`set_size`](Self::set_size))
    /// whose downloads land in [`download_dir`](Self::download_dir) without
    /// a prompt.
    pub async fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).is_file(),
                "{binary} is missing: {MISSING}"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("testkit-browser-")
            .tempdir()
            .expect("create a temporary directory for the browser");
        let profile = dir.path().join("profile");
        let downloads = dir.path().join("downloads");
        for sub in [&profile, &downloads] {
            std::fs::create_dir(sub)
                .expect("create the browser's profile and download directories");
        }
        let port = crate::free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log"))
            .expect("create chromedriver.log");
        let chromedriver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .current_dir(dir.path())
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("duplicate the log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e} ({MISSING})"))
        };
        let mut starting = Starting {
            chromedriver: Some(chromedriver),
            log: dir.path().join("chromedriver.log"),
        };
        starting.wait_ready(port);

        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&profile, &downloads))
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start a Chromium session: {e}; its log:\n{}",
                    starting.log()
                )
            });
        let browser = Browser {
            client,
            chromedriver: starting
                .chromedriver
                .take()
                .expect("chromedriver was started"),
            port,
            dir,
            downloads,
        };
        // --window-size sized the window, frame included.
        browser.set_size(WIDTH, HEIGHT).await;
        browser
    }

    /// The WebDriver client, for everything else (`goto`, `find`, `execute`…).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where downloads land, under the file name the server suggested:
    /// the profile's `download.default_directory` pref, which headless
    /// Chromium 156 under chromedriver honours as is (no DevTools
    /// `Browser.setDownloadBehavior` needed).
    pub fn download_dir(&self) -> &Path {
        &self.downloads
    }

    /// Resize the window so that the page's viewport (`innerWidth` ×
    /// `innerHeight`, what media queries see) is `width`×`height`, e.g.
    /// 390×844 for the phone layout. Headless Chromium still counts a
    /// browser frame in the window's size (143 px of height in Chromium
    /// 156): the window is grown by what the frame takes.
    pub async fn set_size(&self, width: u32, height: u32) {
        let (mut window_width, mut window_height) = (width, height);
        for _ in 0..6 {
            self.client
                .set_window_size(window_width, window_height)
                .await
                .unwrap_or_else(|e| {
                    panic!("resize the window to {window_width}×{window_height}: {e}")
                });
            let (inner_width, inner_height) = self.settled_viewport().await;
            if (inner_width, inner_height) == (width, height) {
                return;
            }
            window_width = (window_width + width).saturating_sub(inner_width);
            window_height = (window_height + height).saturating_sub(inner_height);
        }
        panic!(
            "cannot give the page a {width}×{height} viewport: {:?} with a {window_width}×{window_height} window",
            self.viewport().await
        );
    }

    /// The viewport once a resize has reached the page: the same size read
    /// twice 50 ms apart (on a busy machine the page learns of a resize
    /// late, and a size read too early makes the next step overshoot).
    async fn settled_viewport(&self) -> (u32, u32) {
        let mut last = self.viewport().await;
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = self.viewport().await;
            if now == last {
                return now;
            }
            last = now;
        }
        last
    }

    /// The page's `innerWidth` and `innerHeight`.
    async fn viewport(&self) -> (u32, u32) {
        let size = self
            .client
            .execute("return [innerWidth, innerHeight]", vec![])
            .await
            .unwrap_or_else(|e| panic!("read the viewport's size: {e}"));
        let dimension = |i: usize| {
            size[i]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or_else(|| panic!("the viewport's size is not two numbers: {size}"))
        };
        (dimension(0), dimension(1))
    }

    /// Emulate `prefers-color-scheme: dark` (true) or light (false) via the
    /// DevTools command `Emulation.setEmulatedMedia`. It holds for the current
    /// tab, across navigations, until changed.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// Limit the tab's uploads to `bytes_per_sec` (`None`: no limit) with
    /// DevTools' network emulation (`Network.emulateNetworkConditions`),
    /// so that a test can watch an upload in progress, or cut it midway.
    /// It holds for the current tab, across navigations, until changed.
    pub async fn throttle_uploads(&self, bytes_per_sec: Option<u32>) {
        self.cdp("Network.enable", json!({})).await;
        let up = bytes_per_sec.map_or(-1.0, f64::from);
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": up }),
        )
        .await;
    }

    /// Save a PNG screenshot of the viewport as
    /// `<screenshots_dir()>/<name>.png` and return the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("take screenshot {name}: {e}"));
        let path = screenshots_dir().join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("write the screenshot {}: {e}", path.display()));
        path
    }

    /// The browser console's messages at SEVERE level (`console.error`,
    /// failed loads, CSP violations) since the previous call: chromedriver
    /// hands each entry out once.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .session_post("se/log", json!({ "type": "browser" }))
            .await;
        let entries = entries
            .as_array()
            .unwrap_or_else(|| panic!("chromedriver's browser log is not a list: {entries}"));
        entries
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| {
                entry["message"]
                    .as_str()
                    .map_or_else(|| entry.to_string(), str::to_owned)
            })
            .collect()
    }

    /// Wait up to 10 s for the download `file_name` to be complete in
    /// [`download_dir`](Self::download_dir) (Chromium writes
    /// `<file_name>.crdownload` first, then renames it); return its path.
    pub async fn wait_for_download(&self, file_name: &str) -> PathBuf {
        let path = self.downloads.join(file_name);
        let deadline = Instant::now() + DOWNLOAD_TIMEOUT;
        while !path.is_file() {
            if Instant::now() >= deadline {
                let present: Vec<String> = std::fs::read_dir(&self.downloads)
                    .map(|entries| {
                        entries
                            .filter_map(Result::ok)
                            .map(|entry| entry.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                panic!(
                    "no download {file_name} in {} after {DOWNLOAD_TIMEOUT:?} (there: {present:?})",
                    self.downloads.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        path
    }

    /// chromedriver's output so far (Chromium's start-up errors among it).
    pub fn log(&self) -> String {
        crate::read_log(&self.dir.path().join("chromedriver.log"))
    }

    /// Quit the session (Chromium exits) and stop chromedriver. Dropping a
    /// [`Browser`] does the same, best effort and less politely.
    pub async fn close(self) {
        if let Err(e) = self.client.clone().close().await {
            eprintln!("testkit: closing the WebDriver session failed: {e}");
        }
        // Drop kills chromedriver and removes the directory.
    }

    /// Send a Chrome DevTools command to the current tab, through
    /// chromedriver's `POST /session/{id}/goog/cdp/execute`.
    async fn cdp(&self, command: &str, params: Value) -> Value {
        self.session_post(
            "goog/cdp/execute",
            json!({ "cmd": command, "params": params }),
        )
        .await
    }

    /// `POST /session/{id}/<path>` with a JSON `body`; its `value`.
    async fn session_post(&self, path: &'static str, body: Value) -> Value {
        let command = SessionPost { path, body };
        let what = format!("{command:?}");
        self.client
            .issue_cmd(command)
            .await
            .unwrap_or_else(|e| panic!("chromedriver on port {} refused {what}: {e}", self.port))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium is in chromedriver's process group: both go at once.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.chromedriver),
            rustix::process::Signal::KILL,
        );
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

/// Where screenshots go: `$ASSET_CATALOG_SCREENSHOTS` if set, else
/// `<workspace>/target/ui-screenshots` (created).
pub fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("ASSET_CATALOG_SCREENSHOTS")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("testkit sits in the workspace")
                .join("target/ui-screenshots")
        });
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("create the screenshot directory {}: {e}", dir.display()));
    dir
}

/// Chromium's flags and prefs: headless, quiet on the network (nothing may
/// reach Google's hosts here), a fresh profile, downloads without a prompt,
/// and the console log kept for [`Browser::console_errors`].
fn capabilities(profile: &Path, downloads: &Path) -> fantoccini::wd::Capabilities {
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={WIDTH},{HEIGHT}"),
    ];
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert("browserName".to_owned(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            "args": args,
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
            },
        }),
    );
    capabilities.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
    capabilities
}

/// Chromedriver between its spawn and the session: killed (its log shown
/// by the panic) if start-up fails.
struct Starting {
    chromedriver: Option<Child>,
    log: PathBuf,
}

impl Starting {
    fn log(&self) -> String {
        crate::read_log(&self.log)
    }

    /// Poll `GET /status` until chromedriver says it is ready.
    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if status_ready(port) {
                return;
            }
            let exited = self
                .chromedriver
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "chromedriver exited ({status}) at start; its output:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver was not ready on 127.0.0.1:{port} within {READY_TIMEOUT:?}; its output:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether chromedriver on 127.0.0.1:`port` answers `GET /status` with
/// `"ready": true`. Not [`crate::http::get`]: chromedriver refuses HTTP/1.0.
fn status_ready(port: u16) -> bool {
    let timeout = Duration::from_secs(2);
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // Read until the body is complete: its Content-Length, or the end.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            });
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    text.starts_with("HTTP/1.1 200")
        && text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str::<Value>(body).ok())
            .is_some_and(|status| status["value"]["ready"] == true)
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.chromedriver.take() {
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::KILL,
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `POST /session/{id}/<path>` with a JSON body: chromedriver's own
/// endpoints (DevTools commands, the console log) that fantoccini has no
/// method for.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session_id = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session_id}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}
