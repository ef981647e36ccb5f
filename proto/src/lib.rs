//! Wire contract between `asset-catalog-server` and `asset-watcher`: the
//! SHA-256 hex type, the JSON bodies of API v1, the metadata header names and
//! the stable error codes. Nothing here does I/O; both daemons and their tests
//! depend on these definitions so the two sides cannot drift apart.

mod error;
mod hash;
mod headers;
mod model;
mod text;

pub use error::{ErrorBody, ErrorCode};
pub use hash::{ParseSha256Error, Sha256Hex};
pub use headers::{
    HEADER_CLIENT, HEADER_MTIME, HEADER_NAME, HEADER_PATH, decode_header_text, encode_header_text,
};
pub use model::{
    Asset, AssetDetail, AssetPage, CheckRequest, CheckResponse, Gps, Integrity, MAX_CHECK_BATCH,
    Media, MediaKind, NewSighting, Sighting, UploadResponse,
};
pub use text::misleads_when_shown;

/// Path prefix of every versioned API route.
pub const API_V1: &str = "/v1";
