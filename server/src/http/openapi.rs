//! `GET /v1/openapi.json`: the OpenAPI 3 document of API v1, open like
//! `/healthz` (it describes the API, it reveals no data).
//!
//! The document (`server/openapi.json`) is hand-written and compiled in
//! verbatim rather than generated with utoipa: utoipa would add a proc-macro
//! dependency tree and annotations on every handler and wire type (proto would
//! need it too) on a 2-core machine where release builds are already slow, and
//! still could not describe what the handlers read by hand — the
//! percent-encoded `x-asset-*` headers, the multipart form, `Range`, bearer
//! scopes, the errors raised before routing. Drift is caught instead by the
//! integration test that holds the served document to [`super::ROUTES`] and
//! probes every documented operation, and by `scripts/fuzz-api.sh`, which
//! checks every response against it.

use actix_web::HttpResponse;
use actix_web::http::header;

/// Where the document is served.
pub const PATH: &str = "/v1/openapi.json";

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub(super) async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(DOCUMENT)
}
