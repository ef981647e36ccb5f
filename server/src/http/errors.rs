//! JSON errors for what never reaches a handler: malformed JSON bodies, bad
//! query strings and paths, unknown routes (404 `route_not_found`) and wrong
//! methods (405 `method_not_allowed`, with `Allow`).

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use asset_catalog_proto::ErrorCode;

use super::request::TOO_MANY_HASHES;
use crate::error::ApiError;

pub(super) fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("JSON bodies are limited to {limit} bytes"),
        ),
        JsonPayloadError::Payload(PayloadError::Incomplete(_) | PayloadError::Io(_)) => {
            ApiError::new(ErrorCode::IncompleteBody, "the request body ended early")
        }
        JsonPayloadError::Deserialize(e) if e.to_string().starts_with(TOO_MANY_HASHES) => {
            ApiError::new(ErrorCode::TooManyHashes, e.to_string())
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}"))
        }
        other => ApiError::new(
            ErrorCode::InvalidJson,
            format!("invalid JSON body: {other}"),
        ),
    };
    api.into()
}

pub(super) fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        ErrorCode::BadRequest,
        format!("invalid query string: {err}"),
    )
    .into()
}

pub(super) fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(ErrorCode::BadRequest, format!("invalid path: {err}")).into()
}

pub(super) async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path: String = req.path().chars().take(200).collect();
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!(
            "no route for {} {path}; the API lives under /v1",
            req.method()
        ),
    ))
}

pub(super) async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("this route accepts {allow}"),
    )
    .error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
