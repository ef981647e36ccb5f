//! `POST /v1/assets/{sha256}/sightings`: a client has known content at
//! another place; record it without the bytes being sent again.

use actix_web::{HttpRequest, HttpResponse, web};
use asset_catalog_proto::NewSighting;

use super::AppState;
use super::request::{Object, client, parse_hash};
use crate::error::ApiError;
use crate::service::{Caller, RawMeta, UploadMeta};

#[tracing::instrument(skip_all, err(level = "debug", Display), fields(asset.sha256 = %path))]
pub(super) async fn post(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Json<Object<NewSighting>>,
) -> Result<HttpResponse, ApiError> {
    let sha = parse_hash(&path)?;
    let Object(NewSighting { path, name, mtime }) = body.into_inner();
    let raw = RawMeta {
        name: Some(name),
        path: Some(path),
        client: client(&req)?,
        ..RawMeta::default()
    };
    let mut meta = UploadMeta::parse(raw, &sha)?;
    meta.mtime = mtime;
    let asset = state.catalog.add_sighting(&caller, &sha, meta).await?;
    Ok(HttpResponse::Ok().json(asset))
}
