//! `/v1/assets/{sha256}`: upload the bytes (PUT), read the metadata
//! (GET, HEAD) and delete (DELETE).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use serde::Deserialize;

use super::AppState;
use super::pace::paced;
use super::request::{content_length, parse_hash, raw_meta};
use crate::error::ApiError;
use crate::service::{Caller, UploadMeta};

/// `GET` query: which page of the sightings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DetailQuery {
    sightings_limit: Option<usize>,
    sightings_cursor: Option<String>,
}

/// `PUT`: 201 stored now, 200 already present (sighting recorded).
#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn put(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let meta = UploadMeta::parse(raw_meta(&req)?, &sha)?;
    let declared = content_length(&req)?;
    let body = paced(payload, state.limits.pace);
    let outcome = state
        .catalog
        .upload(&caller, sha, meta, declared, body)
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(outcome))
}

/// `GET`/`HEAD`: the asset and its sightings.
#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn get(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let DetailQuery {
        sightings_limit,
        sightings_cursor,
    } = query.into_inner();
    let detail = state
        .catalog
        // An empty cursor means the first page, as in `GET /v1/assets`.
        .detail(
            &caller,
            &sha,
            sightings_limit,
            sightings_cursor.as_deref().filter(|c| !c.is_empty()),
        )
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `DELETE`: 204 when removed.
#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn delete(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    state.catalog.delete(&caller, &sha).await?;
    Ok(HttpResponse::NoContent().finish())
}
