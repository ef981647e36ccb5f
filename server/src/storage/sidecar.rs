//! The core metadata of one asset (and its first sighting), so that
//! `reindex` can rebuild the index from the bucket alone. It travels in one
//! of two forms:
//!
//! - as a user-metadata attribute of the content object itself
//!   (`x-amz-meta-acat-v1` on S3), on backends that keep attributes, when it
//!   fits: one PUT per upload instead of two;
//! - as a sidecar object `meta/<sha256>.json`, written after the content
//!   object is complete, on the local file store (object_store's local store
//!   refuses attributes) and for metadata too long for object attributes.

use asset_catalog_proto::Sha256Hex;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Current sidecar format version.
pub const SIDECAR_VERSION: u32 = 1;

/// Name of the object attribute (S3 user metadata) carrying a [`Description`].
pub const DESCRIPTION_ATTRIBUTE: &str = "acat-v1";

/// S3 allows 2 KB of user metadata per object; longer descriptions go to a
/// sidecar object instead.
const ATTRIBUTE_MAX: usize = 1900;

/// Bytes escaped in the attribute value: everything a header value cannot
/// carry verbatim, space (SigV4 folds runs of spaces) and `%` itself.
const ATTRIBUTE_ESCAPE: &AsciiSet = &CONTROLS.add(b' ').add(b'%');

/// What the content object's key, size and hash do not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    pub content_type: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sighting: Option<SidecarSighting>,
}

impl Description {
    /// The attribute value, or `None` when it is too long for object
    /// metadata (the caller then writes a sidecar).
    pub fn to_attribute(&self) -> Option<String> {
        let json = serde_json::to_string(self).ok()?;
        let value = utf8_percent_encode(&json, ATTRIBUTE_ESCAPE).to_string();
        (value.len() <= ATTRIBUTE_MAX).then_some(value)
    }

    /// Parse an attribute value written by [`Description::to_attribute`].
    pub fn from_attribute(value: &str) -> Result<Self, String> {
        let json = percent_decode_str(value)
            .decode_utf8()
            .map_err(|e| format!("not UTF-8 after percent-decoding: {e}"))?;
        serde_json::from_str(&json).map_err(|e| e.to_string())
    }
}

/// Contents of `meta/<sha256>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub version: u32,
    pub sha256: Sha256Hex,
    pub key: String,
    pub size: u64,
    #[serde(flatten)]
    pub description: Description,
}

/// Where the content was first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarSighting {
    pub client: String,
    pub path: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub mtime: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(path: &str) -> Description {
        Description {
            content_type: "image/jpeg".into(),
            name: "été 2024.jpg".into(),
            first_seen: OffsetDateTime::UNIX_EPOCH,
            first_sighting: Some(SidecarSighting {
                client: "host".into(),
                path: path.into(),
                name: "été 2024.jpg".into(),
                mtime: None,
            }),
        }
    }

    #[test]
    fn attribute_round_trips_and_is_a_plain_header_value() {
        let d = description("Photos/  two  spaces/été 2024.jpg");
        let value = d.to_attribute().expect("fits");
        assert!(
            value.bytes().all(|b| b.is_ascii_graphic()),
            "only visible ASCII: {value}"
        );
        assert_eq!(Description::from_attribute(&value), Ok(d));
    }

    #[test]
    fn a_description_too_long_for_object_metadata_is_refused() {
        assert_eq!(description(&"x/".repeat(1000)).to_attribute(), None);
        assert!(Description::from_attribute("%7Bnot json").is_err());
    }

    #[test]
    fn the_sidecar_file_format_is_unchanged() {
        let sidecar = Sidecar {
            version: SIDECAR_VERSION,
            sha256: Sha256Hex::from_digest([7; 32]),
            key: "k.jpg".into(),
            size: 3,
            description: description("a/b.jpg"),
        };
        let json = serde_json::to_value(&sidecar).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "content_type",
                "first_seen",
                "first_sighting",
                "key",
                "name",
                "sha256",
                "size",
                "version"
            ]
        );
        let back: Sidecar = serde_json::from_value(json).expect("parse");
        assert_eq!(back, sidecar);
    }
}
