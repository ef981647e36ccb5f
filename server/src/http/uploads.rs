//! `/v1/uploads`: resumable uploads over the open tus 1.0.0 protocol
//! (<https://tus.io/protocols/resumable-upload>): core (`HEAD` for the
//! offset, `PATCH` with `Upload-Offset`, 409 on a mismatch), creation
//! (`POST` with `Upload-Length` and `Upload-Metadata`), termination
//! (`DELETE`) and expiration (`Upload-Expires`). `OPTIONS` advertises them
//! and the largest size. The session logic is `service::resumable`.
//!
//! `Upload-Metadata` keys (values base64, as tus says): `sha256` (hex, the
//! content's hash: required, verified on the last byte), `name` (or tus
//! clients' usual `filename`), `path`, `mtime` (RFC 3339), `client`.
//! Content already stored is answered at creation: `201` whose `Location`
//! reports `Upload-Offset` = `Upload-Length`, so any tus client is done
//! without sending a byte (its sighting is recorded), and our header
//! `Asset-Catalog-Present: true`.
//!
//! The web UI serves the same protocol at `/ui/uploads` behind its session
//! and CSRF rule (`crate::ui::uploads`): each handler here is a thin
//! extractor over a `*_at`/`*_of` function that takes the verified caller
//! and, for creation, the base path its `Location` points under.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use asset_catalog_proto::{ErrorCode, Sha256Hex};
use base64::Engine as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::AppState;
use super::pace::paced;
use super::request::{client, parse_hash};
use crate::error::ApiError;
use crate::service::{Caller, Created, RawMeta, UploadMeta};

pub const TUS_VERSION: &str = "1.0.0";
/// Where the API serves tus (the web UI serves the same under `crate::ui`).
pub const API_BASE: &str = "/v1/uploads";
const EXTENSIONS: &str = "creation,termination,expiration";
const OFFSET_TYPE: &str = "application/offset+octet-stream";
/// Prefix of the `Location` of content that was already stored.
const PRESENT: &str = "present-";

fn tus(b: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    b.insert_header(("Tus-Resumable", TUS_VERSION))
        .insert_header((header::CACHE_CONTROL, "no-store"))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::BadRequest,
                        format!("{name} must be a non-negative integer"),
                    )
                })
        })
        .transpose()
}

/// Every request but `OPTIONS` names the protocol version it speaks.
fn check_version(req: &HttpRequest) -> Result<(), ApiError> {
    match req
        .headers()
        .get("Tus-Resumable")
        .and_then(|v| v.to_str().ok())
    {
        Some(TUS_VERSION) => Ok(()),
        other => Err(ApiError::new(
            ErrorCode::TusVersion,
            format!(
                "Tus-Resumable: {TUS_VERSION} is required (got {other:?}); this server speaks tus {TUS_VERSION}"
            ),
        )),
    }
}

fn expires(t: OffsetDateTime) -> String {
    t.format(&Rfc2822).unwrap_or_default()
}

/// `OPTIONS /v1/uploads`: what this server supports.
pub(super) async fn options(state: web::Data<AppState>) -> HttpResponse {
    let max = state.catalog.limits().max_upload_bytes;
    tus(&mut HttpResponse::NoContent())
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", EXTENSIONS))
        .insert_header(("Tus-Max-Size", max.to_string()))
        .finish()
}

/// `Upload-Metadata`: `key base64,key base64,…` (a value may be absent).
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    let Some(raw) = headers.get("Upload-Metadata") else {
        return Err(bad(
            "Upload-Metadata is required: at least `sha256 <base64 of the hex hash>`".into(),
        ));
    };
    let raw = raw
        .to_str()
        .map_err(|_| bad("Upload-Metadata must be ASCII".into()))?;
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| bad(format!("Upload-Metadata value of {key:?} is not base64")))?;
            let value = String::from_utf8(bytes)
                .map_err(|_| bad(format!("Upload-Metadata value of {key:?} is not UTF-8")))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

/// The content's hash and description from `Upload-Metadata`.
fn declared(req: &HttpRequest) -> Result<(Sha256Hex, UploadMeta), ApiError> {
    let mut raw = RawMeta {
        client: client(req)?,
        ..RawMeta::default()
    };
    let mut sha = None;
    for (key, value) in metadata(req.headers())? {
        match key.as_str() {
            "sha256" => sha = Some(parse_hash(&value)?),
            "name" | "filename" => raw.name = Some(value),
            "path" => raw.path = Some(value),
            "mtime" => raw.mtime = Some(value),
            "client" => raw.client = raw.client.or(Some(value)),
            _ => {} // other clients' keys (filetype, …) are ignored
        }
    }
    let sha = sha.ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadRequest,
            "Upload-Metadata must carry `sha256` (the content's hex SHA-256, base64-encoded)",
        )
    })?;
    let meta = UploadMeta::parse(raw, &sha)?;
    Ok((sha, meta))
}

/// `POST /v1/uploads`: create a session (or answer that the content is stored).
pub(super) async fn create(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    create_at(&state, &caller, &req, API_BASE).await
}

/// `POST {base}`: create a session whose `Location` is under `base`.
pub(crate) async fn create_at(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    base: &str,
) -> Result<HttpResponse, ApiError> {
    check_version(req)?;
    let headers = req.headers();
    if headers.contains_key("Upload-Defer-Length") {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = header_u64(headers, "Upload-Length")?
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "Upload-Length is required"))?;
    let (sha, meta) = declared(req)?;
    let lifetime = state.limits.resumable.expire_after;
    match state
        .catalog
        .create_upload(caller, sha.clone(), meta, length, lifetime)
        .await?
    {
        Created::Session { id, expires: at } => Ok(tus(&mut HttpResponse::Created())
            .insert_header((header::LOCATION, format!("{base}/{id}")))
            .insert_header(("Upload-Expires", expires(at)))
            .finish()),
        Created::Present(outcome) => Ok(tus(&mut HttpResponse::Created())
            .insert_header((header::LOCATION, format!("{base}/{PRESENT}{sha}")))
            .insert_header(("Upload-Offset", length.to_string()))
            .insert_header(("Asset-Catalog-Present", "true"))
            .json(outcome)),
    }
}

/// `HEAD /v1/uploads/{id}`: the committed offset.
pub(super) async fn head(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    head_of(&state, &caller, &req, &path).await
}

/// `HEAD {base}/{id}`.
pub(crate) async fn head_of(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    check_version(req)?;
    if let Some(sha) = id.strip_prefix(PRESENT) {
        let asset = state.catalog.asset(&parse_hash(sha)?).await?;
        return Ok(tus(&mut HttpResponse::Ok())
            .insert_header(("Upload-Offset", asset.size.to_string()))
            .insert_header(("Upload-Length", asset.size.to_string()))
            .finish());
    }
    let progress = state.catalog.upload_progress(caller, id).await?;
    Ok(tus(&mut HttpResponse::Ok())
        .insert_header(("Upload-Offset", progress.offset.to_string()))
        .insert_header(("Upload-Length", progress.length.to_string()))
        .insert_header(("Upload-Expires", expires(progress.expires)))
        .finish())
}

/// `PATCH /v1/uploads/{id}`: append at `Upload-Offset`.
pub(super) async fn patch(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    patch_of(&state, &caller, &req, &path, payload).await
}

/// `PATCH {base}/{id}`.
pub(crate) async fn patch_of(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    id: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_version(req)?;
    let headers = req.headers();
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some(OFFSET_TYPE)
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("a PATCH body must be Content-Type: {OFFSET_TYPE}"),
        ));
    }
    let offset = header_u64(headers, "Upload-Offset")?
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "Upload-Offset is required"))?;
    let declared = header_u64(headers, "Content-Length")?;
    let body = paced(payload, state.limits.pace);
    let appended = state
        .catalog
        .append_upload(caller, id, offset, declared, body)
        .await?;
    let mut response = HttpResponse::NoContent();
    tus(&mut response).insert_header(("Upload-Offset", appended.offset.to_string()));
    if let Some(done) = appended.done {
        response.insert_header(("Asset-Catalog-Sha256", done.asset.sha256.to_string()));
    }
    Ok(response.finish())
}

/// `DELETE /v1/uploads/{id}`: terminate the session.
pub(super) async fn delete(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    delete_of(&state, &caller, &req, &path).await
}

/// `DELETE {base}/{id}`.
pub(crate) async fn delete_of(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    check_version(req)?;
    state.catalog.terminate_upload(caller, id).await?;
    Ok(tus(&mut HttpResponse::NoContent()).finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn metadata_pairs_are_base64_and_values_may_be_empty() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HeaderName::from_static("upload-metadata"),
            HeaderValue::from_static("sha256 YWJj,name bmFtZS50eHQ=,is_confidential"),
        );
        let m = metadata(&h).expect("parse");
        assert_eq!(
            m,
            [
                ("sha256".into(), "abc".into()),
                ("name".into(), "name.txt".into()),
                ("is_confidential".into(), String::new())
            ]
        );
        h.insert(
            header::HeaderName::from_static("upload-metadata"),
            HeaderValue::from_static("sha256 !!!"),
        );
        assert!(metadata(&h).is_err());
    }
}
