//! `/healthz` (the process answers), `/readyz` (storage and index usable;
//! 503 otherwise) and `/metrics` (OpenMetrics text, when enabled).
//!
//! `/readyz` is open, so it tells a caller without a token only ready or
//! not ready (and which part, as the error code): no storage URL, bucket,
//! path or error text. A valid token earns the storage description and the
//! failure's detail. The answer is cached for about a second by the service.

use actix_web::{HttpResponse, web};
use asset_catalog_proto::ErrorCode;
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;
use crate::metrics::CONTENT_TYPE;
use crate::service::Caller;

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<String>,
}

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub(super) async fn readyz(
    state: web::Data<AppState>,
    caller: Option<web::ReqData<Caller>>,
) -> Result<HttpResponse, ApiError> {
    let readiness = state.catalog.readiness().await;
    let known = caller.is_some();
    let not_ready = |code, part: &str, detail: &str| {
        let message = if known {
            format!("not ready: {part}: {detail}")
        } else {
            format!("not ready: {part} unavailable")
        };
        ApiError::new(code, message)
    };
    match (&readiness.storage, &readiness.index) {
        (Ok(()), Ok(())) => Ok(HttpResponse::Ok().json(Ready {
            status: "ready",
            storage: known.then(|| state.catalog.describe_storage()),
        })),
        (Err(e), _) => Err(not_ready(ErrorCode::StorageUnavailable, "storage", e)),
        (_, Err(e)) => Err(not_ready(ErrorCode::IndexUnavailable, "index", e)),
    }
}

pub(super) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.metrics_enabled {
        return Err(ApiError::new(
            ErrorCode::RouteNotFound,
            "metrics are disabled ([metrics] enabled = false)",
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.encode()))
}
