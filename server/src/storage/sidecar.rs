//! The metadata sidecar `meta/<sha256>.json`: the core metadata of one asset
//! (and its first sighting), written after the content object is complete,
//! so that `reindex` can rebuild the index from the bucket alone.
//!
//! A sidecar rather than object attributes because object_store's local file
//! store does not support attributes; one format for every backend keeps
//! `reindex` identical everywhere.

use asset_catalog_proto::Sha256Hex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Current sidecar format version.
pub const SIDECAR_VERSION: u32 = 1;

/// Contents of `meta/<sha256>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub version: u32,
    pub sha256: Sha256Hex,
    pub key: String,
    pub size: u64,
    pub content_type: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sighting: Option<SidecarSighting>,
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
