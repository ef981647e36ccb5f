//! `GET`/`HEAD /v1/assets/{sha256}/thumbnail?size=256|1024`: a thumbnail
//! the thumbnail job made (404 `no_thumbnail` where none exists), with a
//! strong ETag, `If-None-Match` → 304, and the content route's protections.

use actix_web::http::Method;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::TryStreamExt;
use serde::Deserialize;

use super::AppState;
use super::content::not_modified;
use super::request::parse_hash;
use crate::error::ApiError;

/// Thumbnails are made again only when the asset is, so a day is safe.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// Query of the thumbnail route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SizeQuery {
    size: Option<u32>,
}

#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SizeQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let size = query
        .size
        .unwrap_or(asset_catalog_media::THUMBNAIL_SIZES[0]);
    let thumb = state.catalog.thumbnail(&sha, size).await?;
    let mut builder = if not_modified(&req, thumb.etag.trim_matches('"')) {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((header::ETAG, thumb.etag.clone()))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"));
    if not_modified(&req, thumb.etag.trim_matches('"')) {
        return Ok(builder.finish());
    }
    builder
        .insert_header((header::CONTENT_TYPE, thumb.content_type))
        .no_chunking(thumb.body.size);
    if req.method() == Method::HEAD {
        return Ok(builder.streaming(futures_util::stream::empty::<
            Result<bytes::Bytes, std::io::Error>,
        >()));
    }
    let stream = thumb
        .body
        .stream
        .map_err(|e| std::io::Error::other(e.to_string()));
    Ok(builder.streaming(stream))
}
