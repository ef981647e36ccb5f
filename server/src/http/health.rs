//! `/healthz` (the process answers), `/readyz` (storage and index usable;
//! 503 otherwise) and `/metrics` (OpenMetrics text, when enabled).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use asset_catalog_proto::ErrorCode;
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;
use crate::metrics::CONTENT_TYPE;

/// Longest a readiness probe may take before it counts as a failure.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    storage: String,
    assets: u64,
}

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub(super) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let probe = tokio::time::timeout(READY_TIMEOUT, state.catalog.readiness()).await;
    let Ok(readiness) = probe else {
        return Err(ApiError::new(
            ErrorCode::StorageUnavailable,
            "not ready: the readiness probe timed out",
        ));
    };
    match (readiness.storage, readiness.index) {
        (Ok(()), Ok(assets)) => Ok(HttpResponse::Ok().json(Ready {
            status: "ready",
            storage: state.catalog.storage().describe(),
            assets,
        })),
        (Err(e), _) => Err(ApiError::new(
            ErrorCode::StorageUnavailable,
            format!("not ready: storage: {e}"),
        )),
        (_, Err(e)) => Err(ApiError::new(
            ErrorCode::IndexUnavailable,
            format!("not ready: index: {e}"),
        )),
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
