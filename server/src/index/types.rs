//! The values that cross the index interface, the same for every backend:
//! what a write records, what a listing asks for, what a token check says,
//! and the opaque cursors handed to clients.

use asset_catalog_proto::{Asset, AssetPage, Integrity, Media, MediaKind, Sha256Hex, Sighting};
use time::OffsetDateTime;

use crate::auth::Scopes;

/// Position after the last item of a page. Opaque on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub first_seen: i64,
    pub sha256: Sha256Hex,
}

impl Cursor {
    /// Opaque text form: hex of `v1:<nanos>:<sha256>`.
    pub fn encode(&self) -> String {
        hex::encode(format!("v1:{}:{}", self.first_seen, self.sha256))
    }

    /// Parse what [`Cursor::encode`] produced; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = String::from_utf8(hex::decode(text).ok()?).ok()?;
        let rest = raw.strip_prefix("v1:")?;
        let (nanos, sha) = rest.split_once(':')?;
        Some(Self {
            first_seen: nanos.parse().ok()?,
            sha256: sha.parse().ok()?,
        })
    }
}

/// One page of an asset's sightings: most recent first, `limit` at most,
/// after `after` (the `sightings_cursor` of the previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SightingPage {
    pub limit: usize,
    pub after: Option<SightingCursor>,
}

/// Position after the last sighting of a page: `(seen_at, client, path)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SightingCursor(pub(crate) i64, pub(crate) String, pub(crate) String);

impl SightingCursor {
    /// Opaque text form: hex of a JSON triple.
    pub fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parse what [`SightingCursor::encode`] produced; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_slice(&hex::decode(text).ok()?).ok()
    }
}

/// Filters of `GET /v1/assets`. All optional; combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Substring of the asset's or any sighting's file name (ASCII case-insensitive).
    pub name: Option<String>,
    /// Exact type (`text/plain` also matches `text/plain; charset=…`), or a prefix ending in `/`.
    pub content_type: Option<String>,
    /// Seen by this client.
    pub client: Option<String>,
    /// First seen at or after.
    pub since: Option<OffsetDateTime>,
    /// First seen before.
    pub until: Option<OffsetDateTime>,
    /// What the metadata job found it is.
    pub kind: Option<MediaKind>,
    /// Taken (EXIF capture time) at or after.
    pub taken_since: Option<OffsetDateTime>,
    /// Taken before.
    pub taken_until: Option<OffsetDateTime>,
    /// Any of these integrity states (empty: any).
    pub integrity: Vec<Integrity>,
    pub cursor: Option<Cursor>,
    /// Page size (the service bounds it).
    pub limit: usize,
}

/// Core metadata of newly stored content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAsset {
    pub sha256: Sha256Hex,
    pub key: String,
    pub size: u64,
    pub content_type: String,
    pub name: String,
    pub first_seen: OffsetDateTime,
    /// Token id of the upload that stored it.
    pub uploaded_by: Option<String>,
    /// When its bytes were hashed and matched the key (an upload's are);
    /// `None` for content indexed without reading it (`reindex`).
    pub verified_at: Option<OffsetDateTime>,
}

/// One place a client saw the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SightingRecord {
    pub client: String,
    pub path: String,
    pub name: String,
    pub mtime: Option<OffsetDateTime>,
    pub seen_at: OffsetDateTime,
    /// Token id of the request that reported it.
    pub token: Option<String>,
}

/// What [`Index::insert`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    pub asset: Asset,
    /// This call stored the asset row (false: it was already there).
    pub created: bool,
    /// The sighting was recorded (false: the asset is at its sighting cap).
    pub sighted: bool,
}

/// One asset for [`Index::rebuild`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildRecord {
    pub asset: NewAsset,
    pub sighting: Option<SightingRecord>,
}

/// One token as `token list` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    pub limits: TokenLimits,
    /// Bytes of content this token stored first (duplicates cost nothing).
    pub stored_bytes: u64,
    pub created: OffsetDateTime,
    pub last_used: Option<OffsetDateTime>,
    pub revoked: Option<OffsetDateTime>,
}

/// What a token is bound to and limited by (`token create --client/--max-bytes/--rate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenLimits {
    /// Requests naming another client id are refused.
    pub client: Option<String>,
    /// Most bytes of new content the token may store.
    pub max_bytes: Option<u64>,
    /// Most uploads per minute.
    pub rate_per_min: Option<u32>,
}

/// A valid token: who it is and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub id: String,
    pub scopes: Scopes,
    pub limits: TokenLimits,
}

/// The outcome of checking a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Known, secret matches, not revoked.
    Valid(TokenGrant),
    /// Unknown id or wrong secret.
    Unknown,
    /// Matches a revoked token.
    Revoked,
}

/// One asset's key, as `fsck` compares it with the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub sha256: Sha256Hex,
    pub key: String,
    pub size: u64,
    pub first_seen: OffsetDateTime,
}

/// The columns background jobs fill, as both backends store them.
#[derive(Debug)]
pub(crate) struct JobColumns {
    /// [`Media`] as JSON.
    pub media: Option<String>,
    /// The thumbnails' extension; '' when none can exist.
    pub thumbnail: Option<String>,
    pub integrity: String,
    /// Unix nanoseconds; 0 = never.
    pub verified_at: i64,
}

/// [`JobColumns`] as the API shows them.
#[derive(Debug)]
pub(crate) struct JobFields {
    pub media: Option<Media>,
    pub thumbnail: Option<bool>,
    pub integrity: Integrity,
    pub verified_at: Option<OffsetDateTime>,
}

impl JobColumns {
    /// Unreadable values (a newer server's) read as unknown, never as an error.
    pub(crate) fn decode(self) -> JobFields {
        JobFields {
            media: self.media.and_then(|json| serde_json::from_str(&json).ok()),
            thumbnail: self.thumbnail.map(|ext| !ext.is_empty()),
            integrity: Integrity::parse(&self.integrity).unwrap_or_default(),
            verified_at: (self.verified_at > 0).then(|| from_nanos(self.verified_at)),
        }
    }
}

/// A listing page from up to `limit + 1` rows: the extra row only says
/// that there is a next page, whose cursor is the last item kept.
pub(crate) fn asset_page(mut items: Vec<Asset>, limit: usize) -> AssetPage {
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|a| {
            Cursor {
                first_seen: to_nanos(a.first_seen),
                sha256: a.sha256.clone(),
            }
            .encode()
        })
    });
    AssetPage {
        items,
        next_cursor: next_cursor.flatten(),
    }
}

/// A page of sightings from up to `limit + 1` rows, and the next cursor.
pub(crate) fn sighting_page(
    mut rows: Vec<Sighting>,
    limit: usize,
) -> (Vec<Sighting>, Option<SightingCursor>) {
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last()
            .map(|s| SightingCursor(to_nanos(s.seen_at), s.client.clone(), s.path.clone()))
    });
    (rows, next.flatten())
}

/// Unix nanoseconds, the index's time format (saturating outside 1677..2262).
pub(crate) fn to_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.year() < 1970 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(crate) fn from_nanos(nanos: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A size or count as the index stores it (saturating).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `text` with `\`, `%` and `_` escaped for `LIKE … ESCAPE '\'`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        let c = Cursor {
            first_seen: 1_700_000_000_123_456_789,
            sha256: Sha256Hex::from_digest([7; 32]),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("zz"), None);
        assert_eq!(Cursor::decode(&hex::encode("v2:1:x")), None);
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
