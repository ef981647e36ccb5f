//! The JSON error body every non-2xx API response carries, and its stable
//! codes. Codes are part of the API: add new ones, never rename old ones.

use serde::{Deserialize, Serialize};

/// Stable machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request (bad query, bad header, bad form).
    BadRequest,
    /// Request body is not valid JSON of the expected shape.
    InvalidJson,
    /// A path or body value is not a 64-hex-char SHA-256.
    InvalidHash,
    /// Uploaded bytes do not hash to the digest in the URL.
    HashMismatch,
    /// Body ended before the declared Content-Length.
    IncompleteBody,
    /// Body larger than the server's configured limit.
    PayloadTooLarge,
    /// A check batch larger than `MAX_CHECK_BATCH`.
    TooManyHashes,
    /// `Range` cannot be satisfied.
    RangeNotSatisfiable,
    /// Unknown asset.
    NotFound,
    /// The asset has no thumbnail (not an image, not made yet, or its
    /// image could not be decoded).
    NoThumbnail,
    /// No route for this path.
    RouteNotFound,
    /// Route exists, method does not.
    MethodNotAllowed,
    /// Content type the route does not take.
    UnsupportedMediaType,
    /// Missing, unknown or revoked token.
    Unauthorized,
    /// Token lacks the scope this route needs.
    Forbidden,
    /// Client sent too slowly or too little.
    RequestTimeout,
    /// Server is at its concurrent-upload limit; retry later.
    TooManyRequests,
    /// The request's header fields are larger than the server accepts.
    HeadersTooLarge,
    /// Object storage did not answer or failed; retry later.
    StorageUnavailable,
    /// Object storage or the index is out of space.
    InsufficientStorage,
    /// The metadata index failed; retry later.
    IndexUnavailable,
    /// Anything else; details are in the server log.
    Internal,
    /// The token's stored-bytes quota (`token create --max-bytes`) would be
    /// exceeded: 403 when this upload would push the total over it, 413 when
    /// the upload alone is larger than the whole quota.
    QuotaExceeded,
    /// The token's uploads-per-minute limit (`token create --rate`) was
    /// reached; 429 with `Retry-After`.
    RateLimited,
    /// The asset already has `[server] max_sightings_per_asset` sightings;
    /// the content is stored, this further path is not recorded.
    TooManySightings,
    /// The token is bound to another client id (`token create --client`).
    WrongClient,
    /// A resumable upload (tus) session that does not exist, expired, or
    /// belongs to another token.
    UnknownUpload,
    /// A tus `PATCH` whose `Upload-Offset` is not the session's committed
    /// offset (409): `HEAD` the session and continue from its offset.
    OffsetMismatch,
    /// A tus request without `Tus-Resumable: 1.0.0` (412).
    TusVersion,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::InvalidHash => "invalid_hash",
            Self::HashMismatch => "hash_mismatch",
            Self::IncompleteBody => "incomplete_body",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyHashes => "too_many_hashes",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::NotFound => "not_found",
            Self::NoThumbnail => "no_thumbnail",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RequestTimeout => "request_timeout",
            Self::TooManyRequests => "too_many_requests",
            Self::HeadersTooLarge => "headers_too_large",
            Self::StorageUnavailable => "storage_unavailable",
            Self::InsufficientStorage => "insufficient_storage",
            Self::IndexUnavailable => "index_unavailable",
            Self::Internal => "internal",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RateLimited => "rate_limited",
            Self::TooManySightings => "too_many_sightings",
            Self::WrongClient => "wrong_client",
            Self::UnknownUpload => "unknown_upload",
            Self::OffsetMismatch => "offset_mismatch",
            Self::TusVersion => "tus_version",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"code": "...", "message": "..."}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_as_str() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::HashMismatch,
            ErrorCode::StorageUnavailable,
            ErrorCode::RouteNotFound,
            ErrorCode::Internal,
            ErrorCode::QuotaExceeded,
            ErrorCode::RateLimited,
            ErrorCode::TooManySightings,
            ErrorCode::WrongClient,
            ErrorCode::NoThumbnail,
            ErrorCode::UnknownUpload,
            ErrorCode::OffsetMismatch,
            ErrorCode::TusVersion,
        ] {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
