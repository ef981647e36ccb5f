//! JSON bodies of API v1. Times are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Sha256Hex;

/// Most hashes one `POST /v1/assets/check` may ask about.
pub const MAX_CHECK_BATCH: usize = 10_000;

/// One stored asset: unique content, identified by its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub sha256: Sha256Hex,
    /// Object key in the bucket: `<sha256>` or `<sha256>.<ext>`.
    pub key: String,
    pub size: u64,
    pub content_type: String,
    /// File name of the first upload (later sightings may differ).
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// How many (client, path) places this content has been seen at.
    pub sighting_count: u64,
    /// What the metadata job learned from the bytes; absent until it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    /// Whether `GET /v1/assets/{sha256}/thumbnail` has one; absent until
    /// the jobs decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<bool>,
    /// What the last re-read of the stored bytes found.
    #[serde(default)]
    pub integrity: Integrity,
    /// When the stored bytes were last hashed and matched (the upload
    /// counts); absent when never.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub verified_at: Option<OffsetDateTime>,
}

/// The state of an asset's stored bytes, as scrub last found them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Integrity {
    /// Hashed after it was stored (by the upload or a scrub) and matched.
    Ok,
    /// Never re-read since it was indexed (e.g. by `reindex`).
    #[default]
    Unverified,
    /// The stored bytes hash to something else.
    Corrupt,
    /// The object is gone from the bucket.
    Missing,
}

impl Integrity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unverified => "unverified",
            Self::Corrupt => "corrupt",
            Self::Missing => "missing",
        }
    }

    /// Parse [`Integrity::as_str`]'s form.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Ok, Self::Unverified, Self::Corrupt, Self::Missing]
            .into_iter()
            .find(|i| i.as_str() == text)
    }
}

/// What an asset is, by its sniffed media type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    /// Text, PDF, office documents, e-books.
    Document,
    #[default]
    Other,
}

impl MediaKind {
    pub const ALL: [Self; 5] = [
        Self::Image,
        Self::Video,
        Self::Audio,
        Self::Document,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Other => "other",
        }
    }

    /// Parse [`MediaKind::as_str`]'s form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Metadata read from an asset's bytes (never trusted from the uploader).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    /// The media type sniffed from the bytes, e.g. `image/jpeg`.
    #[serde(rename = "type")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// EXIF capture time (DateTimeOriginal; UTC unless the file names its offset).
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub taken_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// EXIF orientation, 1 to 8 (thumbnails have it applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// Only kept with `[jobs] keep_gps = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,
    /// Audio and video playing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
}

/// Where a photo was taken, in decimal degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gps {
    pub latitude: f64,
    pub longitude: f64,
}

/// One place where a client saw an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub client: String,
    /// Path relative to the client's watched root.
    pub path: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub mtime: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub seen_at: OffsetDateTime,
    /// Id of the token that reported it (shown to admin tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET /v1/assets/{sha256}`: the asset and one page of its sightings,
/// most recent first (`sighting_count` is the total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetDetail {
    #[serde(flatten)]
    pub asset: Asset,
    pub sightings: Vec<Sighting>,
    /// Pass as `?sightings_cursor=` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sightings_cursor: Option<String>,
    /// Id of the token whose upload stored it (shown to admin tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<String>,
}

/// `GET /v1/assets`: one page of assets, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetPage {
    pub items: Vec<Asset>,
    /// Pass as `?cursor=` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/assets/check` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub hashes: Vec<Sha256Hex>,
}

/// `POST /v1/assets/check` response: the hashes the server does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResponse {
    pub missing: Vec<Sha256Hex>,
}

/// `POST /v1/assets/{sha256}/sightings`: record that a client has this
/// (already stored) content at another place, without sending the bytes.
/// The client id comes from the `x-asset-client` header. 404 `not_found`
/// when the server does not have the content (upload it instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSighting {
    /// Path relative to the client's watched root, `/` separated.
    pub path: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub mtime: Option<OffsetDateTime>,
}

/// Response of `PUT /v1/assets/{sha256}` and `POST /v1/assets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadResponse {
    /// `true` when these bytes were stored now, `false` when already present.
    pub created: bool,
    pub asset: Asset,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_flattens_asset() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let asset = Asset {
            sha256: Sha256Hex::from_digest([1; 32]),
            key: format!("{}.txt", "01".repeat(32)),
            size: 3,
            content_type: "text/plain".into(),
            name: "a.txt".into(),
            first_seen: t,
            last_seen: t,
            sighting_count: 1,
            media: None,
            thumbnail: None,
            integrity: Integrity::Ok,
            verified_at: Some(t),
        };
        let d = AssetDetail {
            asset,
            sightings: vec![],
            sightings_cursor: Some("ab".into()),
            uploaded_by: Some("0123456789ab".into()),
        };
        let v: serde_json::Value = serde_json::to_value(&d).expect("to json");
        assert_eq!(v["size"], 3);
        assert_eq!(v["first_seen"], "1970-01-01T00:00:00Z");
        let back: AssetDetail = serde_json::from_value(v).expect("from json");
        assert_eq!(back, d);
    }
}
