//! Reading requests: the `{sha256}` path segment, the metadata headers of an
//! upload (percent-encoded UTF-8, see `asset_catalog_proto::decode_header_text`),
//! Content-Length, the body as a stream of [`BodyError`]-typed chunks, and
//! JSON bodies that must be objects ([`Object`]).

use actix_web::HttpRequest;
use actix_web::error::PayloadError;
use actix_web::http::header;
use asset_catalog_proto::{
    ErrorCode, HEADER_CLIENT, HEADER_MTIME, HEADER_NAME, HEADER_PATH, Sha256Hex, decode_header_text,
};
use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

use crate::error::ApiError;
use crate::service::{BodyError, RawMeta};

/// Parse the `{sha256}` segment: 64 hex characters.
pub(super) fn parse_hash(raw: &str) -> Result<Sha256Hex, ApiError> {
    raw.parse().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidHash,
            format!("the path must name a SHA-256 digest: {e}"),
        )
    })
}

/// The request body, with transport errors classified; a body that sends
/// nothing for `stall` ends with [`BodyError::Stalled`].
pub(super) fn body_stream(
    payload: actix_web::web::Payload,
    stall: Duration,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Unpin {
    let chunks = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout(stall, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk.map_err(body_error), Some(payload))),
            Ok(None) => None,
            Err(_) => Some((Err(BodyError::Stalled(stall.as_secs())), None)),
        }
    });
    Box::pin(chunks)
}

pub(super) fn body_error(e: PayloadError) -> BodyError {
    match e {
        PayloadError::Incomplete(_) | PayloadError::Io(_) => BodyError::Incomplete(e.to_string()),
        other => BodyError::Malformed(other.to_string()),
    }
}

/// `Content-Length`, if the client declared one.
pub(super) fn content_length(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "Content-Length is not a number"))
}

/// One metadata header, percent-decoded.
pub(super) fn text_header(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(decode_header_text)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{name} must be percent-encoded UTF-8"),
            )
        })
}

/// The metadata headers of an upload.
pub(super) fn raw_meta(req: &HttpRequest) -> Result<RawMeta, ApiError> {
    Ok(RawMeta {
        name: text_header(req, HEADER_NAME)?,
        path: text_header(req, HEADER_PATH)?,
        mtime: plain_header(req, HEADER_MTIME)?,
        client: plain_header(req, HEADER_CLIENT)?,
        content_type: content_type(req)?,
    })
}

/// The client id header alone (sightings).
pub(super) fn client(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    plain_header(req, HEADER_CLIENT)
}

fn plain_header(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| {
            ApiError::new(ErrorCode::BadRequest, format!("{name} must be plain ASCII"))
        }),
    }
}

fn content_type(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    use actix_web::HttpMessage as _;
    let mime = req.mime_type().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            "Content-Type is not a media type such as image/png",
        )
    })?;
    Ok(mime.map(|m| m.to_string()))
}

/// A JSON body that must be an object. A derived `Deserialize` also reads a
/// struct from an array (`[[]]` would be `{"hashes": []}`); the API takes
/// objects only, so anything else is 400 `invalid_json`.
#[derive(Debug)]
pub(super) struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}
