//! `/ui/uploads` and `/ui/uploads/{id}`: the browse page's resumable upload
//! of large files, the tus 1.0.0 protocol of `http::uploads` (the same
//! handlers; `Location` points back under `/ui/uploads/`) behind the UI's
//! own gate instead of a bearer token: a session (or authentication off),
//! the CSRF rule of `session` on every request (the script sends
//! `X-CSRF-Token` with each one, `HEAD` included), and the `upload` scope.
//! The session cookie still never writes through `/v1/uploads`.
//!
//! Errors are the API's JSON `{code, message}` (the script shows the
//! message), not HTML pages: no session is a 401 here, not a redirect a
//! script would follow to the sign-in form.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::Viewer;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::uploads;
use crate::service::Caller;

/// Where the UI serves tus.
pub const BASE: &str = "/ui/uploads";

/// The caller of a UI tus request that passes the gate (module docs).
async fn gate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let viewer = Viewer::extract(req).await?;
    let token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok());
    viewer.check_form(req, token)?;
    viewer.require(Scope::Upload, "upload")?;
    Ok(viewer.caller)
}

/// `POST /ui/uploads`: create a session.
pub(super) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = gate(&req).await?;
    uploads::create_at(&state, &caller, &req, BASE).await
}

/// `HEAD /ui/uploads/{id}`: the committed offset.
pub(super) async fn head(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = gate(&req).await?;
    uploads::head_of(&state, &caller, &req, &id).await
}

/// `PATCH /ui/uploads/{id}`: append at `Upload-Offset`.
pub(super) async fn patch(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = gate(&req).await?;
    uploads::patch_of(&state, &caller, &req, &id, payload).await
}

/// `DELETE /ui/uploads/{id}`: terminate the session.
pub(super) async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = gate(&req).await?;
    uploads::delete_of(&state, &caller, &req, &id).await
}
