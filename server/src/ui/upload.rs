//! `POST /ui/upload`: the browse page's drag-and-drop (and file picker)
//! upload, one file per request as `multipart/form-data`, through the same
//! verified path as `POST /v1/assets`. The script sends the CSRF token in
//! `X-CSRF-Token` and asks for JSON; a plain form post (no script) sends it
//! as the `csrf` query parameter and is sent on to the asset's page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{UiError, Viewer, redirect};
use crate::auth::Scope;
use crate::http::AppState;
use crate::http::assets::receive_form;

#[derive(Debug, Deserialize)]
pub(super) struct UploadQuery {
    csrf: Option<String>,
}

pub(super) async fn post(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .or(query.csrf.as_deref());
    viewer.check_form(&req, token)?;
    viewer.require(Scope::Upload, "upload")?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let outcome = receive_form(&state, &viewer.caller, &req, payload).await;
    if !wants_json {
        return Ok(redirect(&format!("/ui/assets/{}", outcome?.asset.sha256)));
    }
    Ok(match outcome {
        Ok(outcome) if outcome.created => HttpResponse::Created().json(outcome),
        Ok(outcome) => HttpResponse::Ok().json(outcome),
        // The script shows the API's `{code, message}`.
        Err(e) => actix_web::ResponseError::error_response(&e),
    })
}
