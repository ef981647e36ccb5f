//! [`ApiError`]: the one error type every handler returns. It maps each
//! stable [`ErrorCode`] to its HTTP status in a single match and renders the
//! JSON body `{code, message}`. 5xx errors log their detail and send a plain
//! message; the code is also attached to the response for the metrics.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use asset_catalog_proto::{ErrorBody, ErrorCode};

use crate::index::IndexError;
use crate::service::{BodyError, ServiceError};
use crate::storage::StorageError;

/// An API error: a stable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// For 416: the full size, sent as `Content-Range: bytes */size`.
    range_size: Option<u64>,
    /// Seconds for `Retry-After` (503 and 429 get 5 unless set).
    retry_after: Option<u64>,
    /// `quota_exceeded` for an upload larger than the whole quota: 413, not 403.
    larger_than_quota: bool,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            range_size: None,
            retry_after: None,
            larger_than_quota: false,
        }
    }

    /// Send `Retry-After: secs` with this error.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// 5xx: log `detail`, tell the client only `public`.
    fn server_side(code: ErrorCode, public: &str, detail: &dyn fmt::Display) -> Self {
        tracing::error!(error.code = %code, error.detail = %detail, "{public}");
        Self::new(code, public)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ErrorCode::BadRequest
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidHash
            | ErrorCode::IncompleteBody => StatusCode::BAD_REQUEST,
            ErrorCode::HashMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PayloadTooLarge | ErrorCode::TooManyHashes => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::OffsetMismatch => StatusCode::CONFLICT,
            ErrorCode::TusVersion => StatusCode::PRECONDITION_FAILED,
            ErrorCode::NotFound
            | ErrorCode::RouteNotFound
            | ErrorCode::NoThumbnail
            | ErrorCode::UnknownUpload => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::WrongClient => StatusCode::FORBIDDEN,
            ErrorCode::QuotaExceeded if self.larger_than_quota => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::QuotaExceeded => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManySightings => StatusCode::CONFLICT,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::StorageUnavailable | ErrorCode::IndexUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut builder = HttpResponse::build(status);
        if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            let secs = self.retry_after.unwrap_or(5);
            builder.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if status == StatusCode::UNAUTHORIZED {
            builder.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"asset-catalog\""),
            ));
        }
        if let Some(size) = self.range_size {
            builder.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
        }
        let mut response = builder.json(ErrorBody {
            code: self.code,
            message: self.message.clone(),
        });
        response.extensions_mut().insert(self.code);
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m) => Self::new(ErrorCode::BadRequest, m),
            ServiceError::InvalidHash(m) => Self::new(ErrorCode::InvalidHash, m),
            ServiceError::Unauthorized(m) => Self::new(ErrorCode::Unauthorized, m),
            ServiceError::Forbidden(m) => Self::new(ErrorCode::Forbidden, m),
            e @ ServiceError::HashMismatch { .. } => {
                Self::new(ErrorCode::HashMismatch, e.to_string())
            }
            ServiceError::Body(BodyError::Incomplete(m)) => Self::new(
                ErrorCode::IncompleteBody,
                format!("the request body ended early ({m}); nothing was stored"),
            ),
            ServiceError::Body(BodyError::Stalled(secs)) => Self::new(
                ErrorCode::RequestTimeout,
                format!("the request body stalled for {secs} s; nothing was stored"),
            ),
            ServiceError::Body(e @ (BodyError::TooSlow { .. } | BodyError::Deadline(_))) => {
                Self::new(
                    ErrorCode::RequestTimeout,
                    format!("{e}; nothing was stored"),
                )
            }
            ServiceError::Body(e @ BodyError::Malformed(_)) => {
                Self::new(ErrorCode::BadRequest, e.to_string())
            }
            e @ ServiceError::PayloadTooLarge { .. } => {
                Self::new(ErrorCode::PayloadTooLarge, e.to_string())
            }
            e @ ServiceError::TooManyHashes { .. } => {
                Self::new(ErrorCode::TooManyHashes, e.to_string())
            }
            e @ ServiceError::NotFound(_) => Self::new(ErrorCode::NotFound, e.to_string()),
            e @ ServiceError::NoThumbnail { .. } => {
                Self::new(ErrorCode::NoThumbnail, e.to_string())
            }
            ServiceError::RangeNotSatisfiable { size } => Self {
                range_size: Some(size),
                ..Self::new(
                    ErrorCode::RangeNotSatisfiable,
                    format!("the range is outside the {size}-byte content"),
                )
            },
            e @ ServiceError::UnknownUpload(_) => {
                Self::new(ErrorCode::UnknownUpload, e.to_string())
            }
            e @ ServiceError::OffsetMismatch { .. } => {
                Self::new(ErrorCode::OffsetMismatch, e.to_string())
            }
            e @ ServiceError::WrongClient { .. } => {
                Self::new(ErrorCode::WrongClient, e.to_string())
            }
            ServiceError::QuotaExceeded { max, size, .. } => Self {
                larger_than_quota: size > max,
                ..Self::new(ErrorCode::QuotaExceeded, e.to_string())
            },
            ServiceError::RateLimited { retry_after, .. } => {
                Self::new(ErrorCode::RateLimited, e.to_string()).retry_after(retry_after)
            }
            e @ ServiceError::TooManySightings { .. } => {
                Self::new(ErrorCode::TooManySightings, e.to_string())
            }
            e @ ServiceError::Busy { .. } => Self::new(ErrorCode::TooManyRequests, e.to_string()),
            ServiceError::Storage(e) => e.into(),
            ServiceError::Index(e) => e.into(),
            ServiceError::Spool(e) if is_disk_full(&e) => Self::server_side(
                ErrorCode::InsufficientStorage,
                "the server's state directory is out of space; nothing was stored",
                &format!("spooling the upload: {e}"),
            ),
            ServiceError::Spool(e) => Self::server_side(
                ErrorCode::Internal,
                "receiving the upload into a temporary file failed",
                &e,
            ),
        }
    }
}

/// ENOSPC or EDQUOT.
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match &e {
            StorageError::NotFound { .. } => Self::new(ErrorCode::NotFound, "no such asset"),
            StorageError::Down(detail) => {
                tracing::debug!(error.detail = %detail, "upload refused: object storage is down");
                Self::new(
                    ErrorCode::StorageUnavailable,
                    "object storage is unavailable; retry later",
                )
            }
            StorageError::OutOfSpace { .. } => Self::server_side(
                ErrorCode::InsufficientStorage,
                "object storage is out of space",
                &e,
            ),
            _ => Self::server_side(
                ErrorCode::StorageUnavailable,
                "object storage is unavailable; retry later",
                &e,
            ),
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match &e {
            IndexError::Full(_) => Self::server_side(
                ErrorCode::InsufficientStorage,
                "the index is out of disk space",
                &e,
            ),
            _ => Self::server_side(
                ErrorCode::IndexUnavailable,
                "the metadata index is unavailable; retry later",
                &e,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_json_body() {
        let e = ApiError::new(ErrorCode::HashMismatch, "no");
        assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = e.error_response();
        assert_eq!(
            r.extensions().get::<ErrorCode>(),
            Some(&ErrorCode::HashMismatch)
        );
        let e: ApiError = ServiceError::RangeNotSatisfiable { size: 9 }.into();
        let r = e.error_response();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            r.headers().get(header::CONTENT_RANGE).map(|v| v.as_bytes()),
            Some(&b"bytes */9"[..])
        );
    }
}
