//! Reading requests: the `{sha256}` path segment, the metadata headers of an
//! upload (percent-encoded UTF-8, see `asset_catalog_proto::decode_header_text`),
//! Content-Length, transport errors as [`BodyError`]s, JSON bodies that must
//! be objects ([`Object`]) and check batches bounded while parsed ([`Batch`]).

use actix_web::HttpRequest;
use actix_web::error::PayloadError;
use actix_web::http::header;
use asset_catalog_proto::{
    ErrorCode, HEADER_CLIENT, HEADER_MTIME, HEADER_NAME, HEADER_PATH, MAX_CHECK_BATCH, Sha256Hex,
    decode_header_text,
};
use std::marker::PhantomData;

use serde::de::{
    Deserialize, Deserializer, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer,
};

use crate::error::ApiError;
use crate::service::{BodyError, RawMeta};

/// Parse the `{sha256}` segment: 64 hex characters.
pub(crate) fn parse_hash(raw: &str) -> Result<Sha256Hex, ApiError> {
    raw.parse().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidHash,
            format!("the path must name a SHA-256 digest: {e}"),
        )
    })
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

/// Start of the error [`Batch`] stops with; `errors::json_error` maps it to 413.
pub(super) const TOO_MANY_HASHES: &str = "too many hashes";

/// The `hashes` of a check batch, as strings (a bad one is reported by
/// position later). Parsing stops at the first hash past
/// [`MAX_CHECK_BATCH`]: an oversized batch is refused without reading the
/// rest of it.
#[derive(Debug, Default)]
pub(super) struct Batch(pub Vec<String>);

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BatchVisitor;

        impl<'de> Visitor<'de> for BatchVisitor {
            type Value = Batch;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of SHA-256 hex strings")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Batch, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_CHECK_BATCH));
                while let Some(hash) = seq.next_element::<String>()? {
                    if out.len() == MAX_CHECK_BATCH {
                        return Err(serde::de::Error::custom(format!(
                            "{TOO_MANY_HASHES}: at most {MAX_CHECK_BATCH} per check; split the batch"
                        )));
                    }
                    out.push(hash);
                }
                Ok(Batch(out))
            }
        }

        deserializer.deserialize_seq(BatchVisitor)
    }
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
