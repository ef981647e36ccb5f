//! The server's API v1 over awc: one `Client` (keep-alive pool, connect
//! timeout, TCP_NODELAY via a wrapped connector) sending `check` batches,
//! streamed `PUT`s (fixed-size chunks read from a read-only file, with the
//! file's size/mtime re-checked at the end) and sightings; [`resumable`]
//! adds the tus sessions for large files on the same client. Redirects are
//! never followed: the token and the bytes go to the configured server only.
//! Every failure is a [`TransferError`]; `error.rs` decides what it means.

pub mod resumable;

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_service::ServiceExt;
use asset_catalog_proto::{
    CheckRequest, CheckResponse, ErrorBody, HEADER_CLIENT, HEADER_MTIME, HEADER_NAME, HEADER_PATH,
    NewSighting, Sha256Hex, UploadResponse, encode_header_text,
};
use awc::body::SizedStream;
use bytes::{Bytes, BytesMut};
use futures_util::stream::Stream;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::TransferError;
use crate::hasher::{CHUNK, stat_of};
use crate::shown;
use crate::state::FileStat;

/// The metadata that travels with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File name.
    pub name: String,
    /// `<root label>/<path inside the root>`, `/` separated.
    pub rel_path: String,
    pub mtime: Option<OffsetDateTime>,
    pub content_type: String,
}

/// A client of one asset-catalog server.
#[derive(Clone)]
pub struct ApiClient {
    http: awc::Client,
    /// The server's base URL, without a trailing `/`.
    pub(crate) base: String,
    /// The client id this watcher names itself by.
    pub(crate) client_id: String,
    token: Option<String>,
    request_timeout: Duration,
    bytes_sent: Arc<AtomicU64>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("client_id", &self.client_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Body stream errors; only their occurrence matters.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the file changed while it was being sent")]
    Changed,
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// TLS for an `https://` server: the system's CA certificates plus `ca_file`.
/// (`ca_file` was parsed when the settings were validated.)
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping a system CA certificate");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    let mut extra = 0;
    if let Some(path) = ca_file {
        match crate::config::read_ca_file(path) {
            Ok(certs) => extra = roots.add_parsable_certificates(certs).0,
            Err(e) => tracing::error!("{e}"),
        }
    }
    tracing::debug!(system = added, ca_file = extra, "TLS trust anchors");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

pub(crate) fn map_send_error(e: awc::error::SendRequestError) -> TransferError {
    use awc::error::{ConnectError, SendRequestError as E};
    match e {
        E::Connect(ConnectError::Timeout) | E::Timeout => TransferError::Timeout,
        E::Connect(c) => TransferError::Connect(c.to_string()),
        other => TransferError::Send(other.to_string()),
    }
}

impl ApiClient {
    /// Build the client. Must be called inside an actix/tokio local runtime.
    pub fn new(settings: &Settings, bytes_sent: Arc<AtomicU64>) -> Self {
        let tcp = actix_tls::connect::Connector::new(actix_tls::connect::Resolver::default())
            .service()
            .map(
                |conn: actix_tls::connect::Connection<awc::http::Uri, actix_rt::net::TcpStream>| {
                    if let Err(e) = conn.io_ref().set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                    conn
                },
            );
        let mut connector = awc::Connector::new()
            .connector(tcp)
            .timeout(settings.connect_timeout)
            .conn_keep_alive(Duration::from_secs(4))
            // Uploads, small uploads, sightings (twice the uploads) and checks.
            .limit(settings.upload_concurrency * 3 + settings.small_upload_concurrency + 4);
        if settings.server.scheme() == "https" {
            match tls_config(settings.ca_file.as_deref()) {
                Ok(tls) => connector = connector.rustls_0_23(Arc::new(tls)),
                Err(e) => tracing::error!("cannot set up TLS: {e}"),
            }
        }
        let http = awc::Client::builder()
            .connector(connector)
            // awc follows up to 10 redirects by default, re-sending the body
            // (and, to the same host, the token) wherever they point.
            .disable_redirects()
            .timeout(settings.request_timeout)
            .add_default_header((
                "user-agent",
                concat!("asset-watcher/", env!("CARGO_PKG_VERSION")),
            ))
            .finish();
        Self {
            http,
            base: settings.server.as_str().trim_end_matches('/').to_owned(),
            client_id: settings.client_id.clone(),
            token: settings.token.as_ref().map(|t| t.expose().to_owned()),
            request_timeout: settings.request_timeout,
            bytes_sent,
        }
    }

    pub(crate) fn request(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .insert_header((HEADER_CLIENT, self.client_id.as_str()));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<(), TransferError> {
        let res = self
            .request(awc::http::Method::GET, "/healthz")
            .send()
            .await
            .map_err(map_send_error)?;
        expect_ok(res).await.map(|_| ())
    }

    /// `POST /v1/assets/check`: which of `hashes` the server lacks.
    pub async fn check(&self, hashes: Vec<Sha256Hex>) -> Result<Vec<Sha256Hex>, TransferError> {
        let body = CheckRequest { hashes };
        let res = self
            .request(awc::http::Method::POST, "/v1/assets/check")
            .send_json(&body)
            .await
            .map_err(map_send_error)?;
        let bytes = expect_ok(res).await?;
        let parsed: CheckResponse = serde_json::from_slice(&bytes)
            .map_err(|e| TransferError::Protocol(format!("check response: {e}")))?;
        Ok(parsed.missing)
    }

    /// `POST /v1/assets/{sha256}/sightings`: the server has the content;
    /// record this path without sending bytes.
    pub async fn sighting(&self, sha: &Sha256Hex, meta: &FileMeta) -> Result<(), TransferError> {
        let body = NewSighting {
            path: meta.rel_path.clone(),
            name: meta.name.clone(),
            mtime: meta.mtime,
        };
        let res = self
            .request(
                awc::http::Method::POST,
                &format!("/v1/assets/{sha}/sightings"),
            )
            .send_json(&body)
            .await
            .map_err(map_send_error)?;
        expect_ok(res).await.map(|_| ())
    }

    /// `PUT /v1/assets/{sha256}` with the bytes of `file` (opened with
    /// `hasher::open_regular`) streamed from disk. `expected` is the stat the
    /// hash was computed from; any difference at the start or the end of the
    /// transfer is `TransferError::Changed`.
    pub async fn upload(
        &self,
        file: std::fs::File,
        expected: &FileStat,
        sha: &Sha256Hex,
        meta: &FileMeta,
    ) -> Result<UploadResponse, TransferError> {
        if !stat_of(&file)?.same_content(expected) {
            return Err(TransferError::Changed);
        }
        let mut req = self
            .request(awc::http::Method::PUT, &format!("/v1/assets/{sha}"))
            .insert_header((HEADER_NAME, encode_header_text(&meta.name)))
            .insert_header((HEADER_PATH, encode_header_text(&meta.rel_path)))
            .insert_header(("content-type", meta.content_type.as_str()));
        if let Some(mtime) = meta.mtime.and_then(format_rfc3339) {
            req = req.insert_header((HEADER_MTIME, mtime));
        }
        let res = self.send_file(req, file, expected, expected.size).await?;
        let bytes = expect_ok(res).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TransferError::Protocol(format!("upload response: {e}")))
    }

    /// Send `req` with a body of the `len` bytes of `file` from its current
    /// position. `expected` is the stat the bytes are described by: a file
    /// that ends early, or whose size/mtime differs at the end, is
    /// `TransferError::Changed`. A body that makes no progress for the
    /// request timeout is `TransferError::Timeout`.
    pub(crate) async fn send_file(
        &self,
        req: awc::ClientRequest,
        file: std::fs::File,
        expected: &FileStat,
        len: u64,
    ) -> Result<awc::ClientResponse, TransferError> {
        let progress = Rc::new(Cell::new(Instant::now()));
        let changed = Rc::new(Cell::new(false));
        let body = file_stream(
            tokio::fs::File::from_std(file),
            (*expected, len),
            Rc::clone(&progress),
            Rc::clone(&changed),
            Arc::clone(&self.bytes_sent),
        );
        let send = req
            .timeout(Duration::from_secs(u64::from(u32::MAX)))
            .send_body(SizedStream::new(len, body));
        let sent = tokio::select! {
            r = send => r,
            () = stall_watch(Rc::clone(&progress), self.request_timeout) => return Err(TransferError::Timeout),
        };
        match sent {
            Ok(res) => Ok(res),
            Err(_) if changed.get() => Err(TransferError::Changed),
            Err(e) => Err(map_send_error(e)),
        }
    }
}

/// Resolves when the body made no progress for `limit`.
async fn stall_watch(progress: Rc<Cell<Instant>>, limit: Duration) {
    loop {
        let deadline = progress.get() + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// The body: `len` bytes from the file's position in `CHUNK`-sized pieces;
/// at the end, the file's size and mtime must still be `expected`'s.
fn file_stream(
    file: tokio::fs::File,
    (expected, len): (FileStat, u64),
    progress: Rc<Cell<Instant>>,
    changed: Rc<Cell<bool>>,
    bytes_sent: Arc<AtomicU64>,
) -> impl Stream<Item = Result<Bytes, BodyError>> {
    let state = Some((file, len));
    futures_util::stream::unfold(state, move |state| {
        let progress = Rc::clone(&progress);
        let changed = Rc::clone(&changed);
        let bytes_sent = Arc::clone(&bytes_sent);
        async move {
            let (mut file, remaining) = state?;
            progress.set(Instant::now());
            if remaining == 0 {
                let now = file.metadata().await.map(|m| FileStat::from_metadata(&m));
                return match now {
                    Ok(s) if s.size == expected.size && s.mtime_ns == expected.mtime_ns => None,
                    Ok(_) => {
                        changed.set(true);
                        Some((Err(BodyError::Changed), None))
                    }
                    Err(e) => Some((Err(BodyError::Io(e)), None)),
                };
            }
            let want = usize::try_from(remaining).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = BytesMut::with_capacity(want);
            while buf.len() < want {
                match (&mut file)
                    .take((want - buf.len()) as u64)
                    .read_buf(&mut buf)
                    .await
                {
                    Ok(0) => {
                        changed.set(true);
                        return Some((Err(BodyError::Changed), None));
                    }
                    Ok(_) => {}
                    Err(e) => return Some((Err(BodyError::Io(e)), None)),
                }
            }
            bytes_sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
            let left = remaining - buf.len() as u64;
            Some((Ok(buf.freeze()), Some((file, left))))
        }
    })
}

pub(crate) fn format_rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Read the body of a 2xx response, or turn the response into an error.
pub(crate) async fn expect_ok<S>(mut res: awc::ClientResponse<S>) -> Result<Bytes, TransferError>
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let location = res
        .headers()
        .get("location")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = res
        .body()
        .limit(4 * 1024 * 1024)
        .await
        .map_err(|e| TransferError::Send(format!("reading the response: {e}")))?;
    if status.is_success() {
        return Ok(body);
    }
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(b) => (Some(b.code), b.message),
        Err(_) => (
            None,
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned(),
        ),
    };
    let message = match location {
        Some(to) if status.is_redirection() => redirect_message(&to),
        _ if message.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        // The server's words, shown in logs and `status`.
        _ => shown::escape(&message),
    };
    Err(TransferError::Http {
        status: status.as_u16(),
        code,
        message,
        retry_after,
    })
}

/// What a redirect to `to` is reported as.
fn redirect_message(to: &str) -> String {
    format!(
        "a redirect to {}, which asset-watcher does not follow (it sends its token and files \
         only to the configured server): set `server` to the address that answers",
        shown::text(to)
    )
}

/// The metadata for a file at `path` under a root labelled `label`.
pub fn file_meta(path: &Path, root: &Path, label: &str, mtime_ns: i64) -> FileMeta {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut rel_path = label.to_owned();
    for c in rel.components() {
        rel_path.push('/');
        rel_path.push_str(&c.as_os_str().to_string_lossy());
    }
    FileMeta {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rel_path,
        mtime: OffsetDateTime::from_unix_timestamp_nanos(i128::from(mtime_ns)).ok(),
        content_type: mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_carries_label_relative_path_and_type() {
        let m = file_meta(
            Path::new("/home/a/Pictures/2024/beach day.JPG"),
            Path::new("/home/a/Pictures"),
            "Pictures",
            1_700_000_000_123_456_789,
        );
        assert_eq!(m.name, "beach day.JPG");
        assert_eq!(m.rel_path, "Pictures/2024/beach day.JPG");
        assert_eq!(m.content_type, "image/jpeg");
        assert_eq!(
            m.mtime.and_then(format_rfc3339).as_deref(),
            Some("2023-11-14T22:13:20.123456789Z")
        );
        let m = file_meta(Path::new("/r/blob"), Path::new("/r"), "r", 0);
        assert_eq!(m.content_type, "application/octet-stream");
    }

    /// Stream a file holding `data` through `file_stream`, after `change`
    /// (if any) rewrote it once opened: the items, whether the stream saw
    /// the file change, and the bytes it counted as sent.
    fn stream_file(
        data: &[u8],
        change: Option<&[u8]>,
    ) -> (Vec<Result<Bytes, BodyError>>, bool, u64) {
        use futures_util::StreamExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, data).expect("write");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(async {
            let (f, stat) = crate::hasher::open_regular(dir.path(), &p).expect("open");
            if let Some(new) = change {
                std::fs::write(&p, new).expect("rewrite");
            }
            let sent = Arc::new(AtomicU64::new(0));
            let changed = Rc::new(Cell::new(false));
            let s = file_stream(
                tokio::fs::File::from_std(f),
                (stat, stat.size),
                Rc::new(Cell::new(Instant::now())),
                Rc::clone(&changed),
                Arc::clone(&sent),
            );
            let items = s.collect().await;
            (items, changed.get(), sent.load(Ordering::Relaxed))
        })
    }

    #[test]
    fn body_stream_yields_the_file_in_chunks_and_counts_bytes() {
        let data: Vec<u8> = (0..CHUNK * 2 + 5).map(|i| (i % 251) as u8).collect();
        let (items, changed, sent) = stream_file(&data, None);
        let chunks: Vec<Bytes> = items.into_iter().map(|c| c.expect("chunk")).collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), data);
        assert_eq!(sent, data.len() as u64);
        assert!(!changed);
    }

    #[test]
    fn body_stream_notices_a_file_that_grew() {
        let (items, changed, _) = stream_file(b"hello", Some(b"hello, world"));
        assert!(items.last().is_some_and(Result::is_err));
        assert!(changed);
    }
}
