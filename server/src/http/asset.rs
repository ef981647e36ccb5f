//! `/v1/assets/{sha256}`: upload the bytes (PUT), read the metadata
//! (GET, HEAD) and delete (DELETE).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::request::{body_stream, content_length, parse_hash, raw_meta};
use crate::error::ApiError;
use crate::service::UploadMeta;

/// `PUT`: 201 stored now, 200 already present (sighting recorded).
#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn put(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let meta = UploadMeta::parse(raw_meta(&req)?, &sha)?;
    let declared = content_length(&req)?;
    let outcome = state
        .catalog
        .upload(
            sha,
            meta,
            declared,
            body_stream(payload, state.limits.body_stall),
        )
        .await?;
    tracing::info!(
        asset.sha256 = %outcome.asset.sha256,
        asset.size = outcome.asset.size,
        created = outcome.created,
        "upload"
    );
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
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let detail = state.catalog.detail(&sha).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `DELETE`: 204 when removed.
#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    state.catalog.delete(&sha).await?;
    tracing::info!(asset.sha256 = %sha, "deleted");
    Ok(HttpResponse::NoContent().finish())
}
