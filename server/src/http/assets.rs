//! `/v1/assets` (list with filters and cursor; multipart form upload for curl
//! and browsers) and `/v1/assets/check` (which hashes of a batch are missing).

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use asset_catalog_proto::{ErrorCode, Integrity, MediaKind, UploadResponse};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::pace::{body_error_of, paced_payload};
use super::request::{Batch, Object, client};
use crate::error::ApiError;
use crate::index::{Cursor, ListFilter};
use crate::service::{BodyError, Caller, DEFAULT_PAGE, RawMeta, ServiceError, Spooled, UploadMeta};

/// Largest text field of a form upload.
const MAX_FORM_TEXT: usize = 16 * 1024;

/// Query of `GET /v1/assets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    name: Option<String>,
    content_type: Option<String>,
    client: Option<String>,
    since: Option<String>,
    until: Option<String>,
    kind: Option<String>,
    taken_since: Option<String>,
    taken_until: Option<String>,
    integrity: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

impl ListQuery {
    /// The filter this query asks for; empty parameters mean no filter.
    fn into_filter(self) -> Result<ListFilter, ApiError> {
        let bad = |msg: String| ApiError::new(ErrorCode::BadRequest, msg);
        // An empty `cursor=` means the first page, as an empty filter means none.
        let cursor = self
            .cursor
            .filter(|c| !c.is_empty())
            .map(|c| {
                Cursor::decode(&c).ok_or_else(|| bad("cursor is not one this server issued".into()))
            })
            .transpose()?;
        let kind = self
            .kind
            .filter(|k| !k.is_empty())
            .map(|k| {
                MediaKind::parse(&k).ok_or_else(|| {
                    bad(format!(
                        "kind={k:?} is not one of image, video, audio, document, other"
                    ))
                })
            })
            .transpose()?;
        let integrity = match self.integrity.as_deref().unwrap_or_default() {
            "" => Vec::new(),
            "problem" => vec![Integrity::Corrupt, Integrity::Missing],
            other => vec![Integrity::parse(other).ok_or_else(|| {
                bad(format!(
                    "integrity={other:?} is not one of ok, unverified, corrupt, missing, problem"
                ))
            })?],
        };
        Ok(ListFilter {
            name: self.name.filter(|n| !n.is_empty()),
            content_type: self.content_type.filter(|c| !c.is_empty()),
            client: self.client.filter(|c| !c.is_empty()),
            since: time_param("since", self.since)?,
            until: time_param("until", self.until)?,
            kind,
            taken_since: time_param("taken_since", self.taken_since)?,
            taken_until: time_param("taken_until", self.taken_until)?,
            integrity,
            cursor,
            limit: self.limit.unwrap_or(DEFAULT_PAGE),
        })
    }
}

/// Body of `POST /v1/assets/check`: hashes as strings so a bad one is
/// reported by position with `invalid_hash`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckBody {
    hashes: Batch,
}

fn time_param(name: &str, raw: Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|t| {
        OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{name}={t:?} is not an RFC 3339 time ({e})"),
            )
        })
    })
    .transpose()
}

#[tracing::instrument(skip_all, err(level = "debug", Display))]
pub(super) async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner().into_filter()?;
    Ok(HttpResponse::Ok().json(state.catalog.list(filter).await?))
}

#[tracing::instrument(skip_all, err(level = "debug", Display))]
pub(super) async fn check(
    state: web::Data<AppState>,
    body: web::Json<Object<CheckBody>>,
) -> Result<HttpResponse, ApiError> {
    let Object(body) = body.into_inner();
    let response = state.catalog.check(body.hashes.0).await?;
    Ok(HttpResponse::Ok().json(response))
}

/// `POST /v1/assets` with `multipart/form-data`: a `file` part (its filename
/// is the asset name) and optional text parts `name`, `path`, `mtime`.
#[tracing::instrument(skip_all, err(level = "debug", Display))]
pub(super) async fn form_upload(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let outcome = receive_form(&state, &caller, &req, payload).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(outcome))
}

/// Read a multipart form upload (one `file`, optional `name`, `path`,
/// `mtime`) and store it; the web UI's upload calls this too.
pub(crate) async fn receive_form(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<UploadResponse, ApiError> {
    let mut form = Multipart::new(req.headers(), paced_payload(payload, state.limits.pace));
    let mut raw = RawMeta {
        client: client(req)?,
        ..RawMeta::default()
    };
    let mut spooled: Option<Spooled> = None;
    while let Some(field) = form.try_next().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" if spooled.is_none() => {
                raw.name = raw.name.or(field_filename(&field));
                raw.content_type = field.content_type().map(|m| m.to_string());
                spooled = Some(state.catalog.spool(field_stream(field)).await?);
            }
            "name" | "path" | "mtime" => {
                let text = Some(field_text(field).await?);
                match name.as_str() {
                    "name" => raw.name = text,
                    "path" => raw.path = text,
                    _ => raw.mtime = text,
                }
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "unexpected form field {other:?}; send one `file` and optionally `name`, `path`, `mtime`"
                    ),
                ));
            }
        }
    }
    let spooled = spooled
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "the form has no `file` field"))?;
    let meta = UploadMeta::parse(raw, &spooled.sha256)?;
    Ok(state.catalog.upload_spooled(caller, spooled, meta).await?)
}

fn field_filename(field: &Field) -> Option<String> {
    field
        .content_disposition()
        .and_then(|cd| cd.get_filename())
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).to_string())
        .filter(|f| !f.is_empty())
}

fn field_stream(
    field: Field,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, BodyError>> + Unpin {
    field.map(|chunk| {
        chunk.map_err(|e| match e {
            MultipartError::Payload(p) => body_error_of(p),
            MultipartError::Incomplete => BodyError::Incomplete(e.to_string()),
            other => BodyError::Malformed(other.to_string()),
        })
    })
}

async fn field_text(mut field: Field) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(form_error)? {
        if buf.len() + chunk.len() > MAX_FORM_TEXT {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "form text fields are limited to 16 KiB",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "form text fields must be UTF-8"))
}

fn form_error(e: MultipartError) -> ApiError {
    match e {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "{e}; send multipart/form-data (curl -F file=@PATH) or use PUT /v1/assets/{{sha256}}"
            ),
        ),
        MultipartError::Payload(p) => ServiceError::Body(body_error_of(p)).into(),
        MultipartError::Incomplete => ApiError::new(
            ErrorCode::IncompleteBody,
            format!("the form ended early ({e}); nothing was stored"),
        ),
        other => ApiError::new(ErrorCode::BadRequest, format!("malformed form: {other}")),
    }
}
