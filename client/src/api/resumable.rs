//! The client side of the server's resumable uploads (`/v1/uploads`, tus
//! 1.0.0 core, creation and termination) on the same [`ApiClient`]: create
//! a session for a hash and length, ask a session's committed offset, send
//! the rest of a file from an offset in one `PATCH`, terminate a session.
//! What a session is for, and when to resume or start over, is the
//! pipeline's (`pipeline/resume.rs`); errors are [`TransferError`]s that
//! `error.rs` classifies like every other.

use std::io::{Seek, SeekFrom};

use asset_catalog_proto::{Sha256Hex, UploadResponse};
use awc::http::{Method, StatusCode};
use base64::Engine as _;

use super::{ApiClient, FileMeta, expect_ok, format_rfc3339, map_send_error};
use crate::error::TransferError;
use crate::state::FileStat;

/// The protocol version every request names.
pub const TUS_VERSION: &str = "1.0.0";
/// Where the server's sessions live.
const UPLOADS: &str = "/v1/uploads";

/// What creating a session gave.
#[derive(Debug)]
pub enum Created {
    /// A session to send the bytes to, by its path on the server.
    Session(String),
    /// The server already has the content and recorded this sighting.
    Present(Box<UploadResponse>),
}

/// What a `PATCH` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patched {
    /// The last byte arrived and the server verified the whole hash.
    Done,
    /// The server committed up to here and waits for the rest.
    At(u64),
}

fn header_u64(res: &awc::ClientResponse, name: &str) -> Option<u64> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `Upload-Metadata`: `key base64(value)` pairs.
fn metadata(sha: &Sha256Hex, meta: &FileMeta, client: &str) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let mut pairs = vec![
        format!("sha256 {}", b64(sha.as_str())),
        format!("name {}", b64(&meta.name)),
        format!("path {}", b64(&meta.rel_path)),
        format!("client {}", b64(client)),
    ];
    if let Some(mtime) = meta.mtime.and_then(format_rfc3339) {
        pairs.push(format!("mtime {}", b64(&mtime)));
    }
    pairs.join(",")
}

/// The session's path from a `Location`: the server's own, relative or
/// absolute under `base`; anything else would send the bytes elsewhere.
fn session_path(location: &str, base: &str) -> Option<String> {
    let path = location.strip_prefix(base).unwrap_or(location);
    let id = path.strip_prefix(UPLOADS)?.strip_prefix('/')?;
    let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| format!("{UPLOADS}/{id}"))
}

impl ApiClient {
    fn tus(&self, method: Method, path: &str) -> awc::ClientRequest {
        self.request(method, path)
            .insert_header(("Tus-Resumable", TUS_VERSION))
    }

    /// `POST /v1/uploads`: a session for `length` bytes of content `sha`.
    pub async fn tus_create(
        &self,
        sha: &Sha256Hex,
        length: u64,
        meta: &FileMeta,
    ) -> Result<Created, TransferError> {
        let res = self
            .tus(Method::POST, UPLOADS)
            .insert_header(("Upload-Length", length.to_string()))
            .insert_header(("Upload-Metadata", metadata(sha, meta, &self.client_id)))
            .send()
            .await
            .map_err(map_send_error)?;
        let present = res.headers().contains_key("asset-catalog-present");
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = expect_ok(res).await?;
        if present {
            return serde_json::from_slice(&body)
                .map(|r| Created::Present(Box::new(r)))
                .map_err(|e| TransferError::Protocol(format!("upload session answer: {e}")));
        }
        location
            .and_then(|l| session_path(&l, &self.base))
            .map(Created::Session)
            .ok_or_else(|| {
                TransferError::Protocol("a new upload session without a usable Location".into())
            })
    }

    /// `HEAD` a session: its committed offset, `None` when the server does
    /// not know it (finished, terminated, expired).
    pub async fn tus_offset(&self, session: &str) -> Result<Option<u64>, TransferError> {
        let res = self
            .tus(Method::HEAD, session)
            .send()
            .await
            .map_err(map_send_error)?;
        match res.status() {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            s if s.is_success() => header_u64(&res, "upload-offset").map(Some).ok_or_else(|| {
                TransferError::Protocol("a session's HEAD without Upload-Offset".into())
            }),
            _ => expect_ok(res).await.map(|_| None),
        }
    }

    /// `PATCH` a session with the rest of `file` from `offset`; `stat` is
    /// the file the session was begun for.
    pub async fn tus_patch(
        &self,
        session: &str,
        mut file: std::fs::File,
        stat: &FileStat,
        offset: u64,
    ) -> Result<Patched, TransferError> {
        file.seek(SeekFrom::Start(offset))?;
        let req = self
            .tus(Method::PATCH, session)
            .insert_header(("content-type", "application/offset+octet-stream"))
            .insert_header(("Upload-Offset", offset.to_string()));
        let len = stat.size.saturating_sub(offset);
        let res = self.send_file(req, file, stat, len).await?;
        if !res.status().is_success() {
            return Err(expect_ok(res)
                .await
                .err()
                .unwrap_or_else(|| TransferError::Protocol("PATCH answered success".into())));
        }
        if res.headers().contains_key("asset-catalog-sha256") {
            return Ok(Patched::Done);
        }
        header_u64(&res, "upload-offset")
            .map(Patched::At)
            .ok_or_else(|| TransferError::Protocol("a PATCH answer without Upload-Offset".into()))
    }

    /// `DELETE` a session; one the server no longer knows is gone already.
    pub async fn tus_terminate(&self, session: &str) -> Result<(), TransferError> {
        let res = self
            .tus(Method::DELETE, session)
            .send()
            .await
            .map_err(map_send_error)?;
        if matches!(res.status(), StatusCode::NOT_FOUND | StatusCode::GONE) {
            return Ok(());
        }
        expect_ok(res).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_session_paths_are_followed() {
        let base = "https://catalog:8000";
        for (location, want) in [
            ("/v1/uploads/0a1b", Some("/v1/uploads/0a1b")),
            ("https://catalog:8000/v1/uploads/ff", Some("/v1/uploads/ff")),
            ("https://elsewhere/v1/uploads/ff", None),
            ("/v1/uploads/", None),
            ("/v1/uploads/../assets", None),
            ("/v1/uploadsX/1", None),
            ("/v1/uploads/1?x=y", None),
        ] {
            assert_eq!(session_path(location, base).as_deref(), want, "{location}");
        }
    }

    #[test]
    fn metadata_values_are_base64() {
        let meta = FileMeta {
            name: "a b.iso".into(),
            rel_path: "w/a b.iso".into(),
            mtime: time::OffsetDateTime::from_unix_timestamp(0).ok(),
            content_type: "application/octet-stream".into(),
        };
        let sha = Sha256Hex::from_digest([0; 32]);
        let text = metadata(&sha, &meta, "box-1");
        let decode = |key: &str| {
            let value = text
                .split(',')
                .find_map(|p| p.strip_prefix(&format!("{key} ")))
                .expect(key);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(value)
                .expect("base64");
            String::from_utf8(raw).expect("utf-8")
        };
        assert_eq!(decode("sha256"), sha.as_str());
        assert_eq!(decode("path"), "w/a b.iso");
        assert_eq!(decode("client"), "box-1");
        assert_eq!(decode("mtime"), "1970-01-01T00:00:00Z");
    }
}
