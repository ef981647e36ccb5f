//! Request middleware: latency by method, route pattern and status; error
//! responses counted by their stable code; one debug line per request and a
//! warning for every 5xx.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use asset_catalog_proto::ErrorCode;

use super::{AppState, ROUTES};
use crate::metrics::method_label;

/// The `route` label: one of the registered patterns, else `(unmatched)` —
/// never the raw path, so made-up paths cannot add series.
fn route_label(pattern: Option<&str>) -> &'static str {
    let api = ROUTES.iter().map(|(route, _)| *route);
    pattern
        .and_then(|p| api.chain(crate::ui::ROUTES).find(|route| *route == p))
        .unwrap_or("(unmatched)")
}

pub(super) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = method_label(req.method());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    let elapsed = start.elapsed();
    let route = route_label(response.request().match_pattern().as_deref());
    let status = response.status();
    let code = response.response().extensions().get::<ErrorCode>().copied();
    if let Some(state) = state {
        state
            .metrics
            .observe_request(method, route, status.as_u16(), elapsed.as_secs_f64());
        if let Some(code) = code {
            state.metrics.error(code);
        }
    }
    let millis = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(http.method = %method, http.route = %route, http.status = status.as_u16(), error.code = ?code, elapsed_ms = millis, "request failed");
    } else {
        tracing::debug!(http.method = %method, http.route = %route, http.status = status.as_u16(), elapsed_ms = millis, "request");
    }
    Ok(response)
}
