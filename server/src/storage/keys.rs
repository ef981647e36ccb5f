//! Object key layout in the bucket. Keys are built only from a validated
//! [`Sha256Hex`] and a sanitised extension, so no client-supplied text can
//! ever become a storage path.
//!
//! ```text
//! <sha256>            content with no usable extension
//! <sha256>.<ext>      content; ext = lower-case [a-z0-9]{1,16} of the first upload's name
//! meta/<sha256>.json  sidecar with the core metadata (see `sidecar`)
//! thumbnails/<size>/<sha256>.<jpg|png>
//!                     a thumbnail, at most <size> pixels on its longest side
//! uploads/<id>/target the key a resumable upload in progress will complete
//!                     to, in stores without a multipart API (the file store;
//!                     see `resumable`); id = 32 lower-case hex digits, random
//! uploads/<id>/<n>    part n (1-based, no leading zeros) of that upload
//! ```

use asset_catalog_proto::Sha256Hex;

/// Prefix of metadata sidecar objects.
pub const SIDECAR_PREFIX: &str = "meta";
/// Prefix of thumbnail objects (made by the thumbnail job).
pub const THUMBNAIL_PREFIX: &str = "thumbnails";
/// Prefix of the parts of resumable uploads in stores without a multipart API.
pub const UPLOAD_PREFIX: &str = "uploads";
/// Name of the record of a staged upload, beside its parts.
const UPLOAD_TARGET: &str = "target";
/// Length of the id of a staged resumable upload (128 random bits, hex).
pub const UPLOAD_ID_LEN: usize = 32;
/// Longest extension kept in a key.
pub const MAX_EXT_LEN: usize = 16;

/// The extension to use in the object key for a file called `name`, if any:
/// the part after the last dot, lower-cased, when it is 1..=16 chars of `[a-z0-9]`
/// and the name has something before the dot (`.bashrc` has no extension).
pub fn extension_of(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() || ext.len() > MAX_EXT_LEN {
        return None;
    }
    let ext = ext.to_ascii_lowercase();
    ext.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        .then_some(ext)
}

/// `<sha256>` or `<sha256>.<ext>`.
pub fn data_key(sha: &Sha256Hex, ext: Option<&str>) -> String {
    match ext {
        Some(ext) => format!("{sha}.{ext}"),
        None => sha.to_string(),
    }
}

/// `meta/<sha256>.json`.
pub fn sidecar_key(sha: &Sha256Hex) -> String {
    format!("{SIDECAR_PREFIX}/{sha}.json")
}

/// `thumbnails/<size>/<sha256>.<ext>`.
pub fn thumbnail_key(sha: &Sha256Hex, size: u32, ext: &str) -> String {
    format!("{THUMBNAIL_PREFIX}/{size}/{sha}.{ext}")
}

/// Is `id` the id of a staged resumable upload (32 lower-case hex digits)?
pub fn is_upload_id(id: &str) -> bool {
    id.len() == UPLOAD_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `uploads/<id>/`: where the parts of staged upload `id` are.
pub fn upload_prefix(id: &str) -> String {
    format!("{UPLOAD_PREFIX}/{id}/")
}

/// `uploads/<id>/<number>`.
pub fn upload_part_key(id: &str, number: u32) -> String {
    format!("{UPLOAD_PREFIX}/{id}/{number}")
}

/// `uploads/<id>/target`: the record of staged upload `id` (its final key).
pub fn upload_target_key(id: &str) -> String {
    format!("{UPLOAD_PREFIX}/{id}/{UPLOAD_TARGET}")
}

/// What a key in the bucket is, for `reindex` and `fsck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// Content object for this hash.
    Data(Sha256Hex),
    /// Sidecar for this hash.
    Sidecar(Sha256Hex),
    /// A thumbnail of this hash's content.
    Thumbnail(Sha256Hex),
    /// The record or a part of the staged resumable upload with this id,
    /// neither completed nor aborted yet: not content, and not foreign.
    Upload(String),
    /// Something this server did not write.
    Foreign,
}

/// Classify a key listed from the bucket.
pub fn classify(key: &str) -> KeyKind {
    if let Some(rest) = key
        .strip_prefix(SIDECAR_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    {
        return match rest.strip_suffix(".json").map(str::parse::<Sha256Hex>) {
            Some(Ok(sha)) if rest.len() == 64 + 5 && rest.starts_with(sha.as_str()) => {
                KeyKind::Sidecar(sha)
            }
            _ => KeyKind::Foreign,
        };
    }
    if let Some(rest) = key
        .strip_prefix(THUMBNAIL_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    {
        return classify_thumbnail(rest);
    }
    if let Some(rest) = key
        .strip_prefix(UPLOAD_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    {
        return classify_upload(rest);
    }
    let (hash, ext) = match key.split_once('.') {
        Some((hash, ext)) => (hash, Some(ext)),
        None => (key, None),
    };
    let ext_ok = ext.is_none_or(|e| {
        !e.is_empty()
            && e.len() <= MAX_EXT_LEN
            && e.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    match hash.parse::<Sha256Hex>() {
        Ok(sha) if ext_ok && sha.as_str() == hash => KeyKind::Data(sha),
        _ => KeyKind::Foreign,
    }
}

/// `<size>/<sha256>.<jpg|png>`, after the thumbnail prefix.
fn classify_thumbnail(rest: &str) -> KeyKind {
    let Some((size, file)) = rest.split_once('/') else {
        return KeyKind::Foreign;
    };
    let sized = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
    match file.split_once('.') {
        Some((hash, "jpg" | "png")) if sized => match hash.parse::<Sha256Hex>() {
            Ok(sha) if sha.as_str() == hash => KeyKind::Thumbnail(sha),
            _ => KeyKind::Foreign,
        },
        _ => KeyKind::Foreign,
    }
}

/// `<id>/target` or `<id>/<number>`, after the upload prefix; the number
/// 1-based, without leading zeros.
fn classify_upload(rest: &str) -> KeyKind {
    let Some((id, name)) = rest.split_once('/') else {
        return KeyKind::Foreign;
    };
    let part = !name.starts_with('0')
        && name.bytes().all(|b| b.is_ascii_digit())
        && name.parse::<u32>().is_ok_and(|n| n >= 1);
    if is_upload_id(id) && (part || name == UPLOAD_TARGET) {
        KeyKind::Upload(id.to_string())
    } else {
        KeyKind::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> Sha256Hex {
        Sha256Hex::from_digest([0xab; 32])
    }

    #[test]
    fn extensions_are_sanitised() {
        assert_eq!(extension_of("photo.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension_of("archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension_of(".bashrc"), None);
        assert_eq!(extension_of("noext"), None);
        assert_eq!(extension_of("x."), None);
        assert_eq!(extension_of("../../etc/passwd"), None);
        assert_eq!(extension_of("a./../../x"), None);
        assert_eq!(extension_of("evil.p/hp"), None);
        assert_eq!(extension_of("a.b\0c"), None);
        assert_eq!(extension_of("a.ünï"), None);
        assert_eq!(extension_of("a.abcdefghijklmnopq"), None);
        assert_eq!(
            extension_of("a.abcdefghijklmnop").as_deref(),
            Some("abcdefghijklmnop")
        );
    }

    #[test]
    fn keys_round_trip_through_classify() {
        let s = sha();
        assert_eq!(
            classify(&data_key(&s, Some("png"))),
            KeyKind::Data(s.clone())
        );
        assert_eq!(classify(&data_key(&s, None)), KeyKind::Data(s.clone()));
        assert_eq!(classify(&sidecar_key(&s)), KeyKind::Sidecar(s.clone()));
        assert_eq!(classify("meta/nothex.json"), KeyKind::Foreign);
        assert_eq!(classify(&s.as_str().to_uppercase()), KeyKind::Foreign);
        assert_eq!(classify(&format!("{s}.PNG")), KeyKind::Foreign);
        assert_eq!(classify("other/file"), KeyKind::Foreign);
        assert_eq!(
            classify(&thumbnail_key(&s, 256, "jpg")),
            KeyKind::Thumbnail(s.clone())
        );
        assert_eq!(classify(&format!("thumbnails/x/{s}.jpg")), KeyKind::Foreign);
        assert_eq!(
            classify(&format!("thumbnails/256/{s}.gif")),
            KeyKind::Foreign
        );
    }

    #[test]
    fn staged_uploads_are_classified_as_such() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(is_upload_id(id));
        for key in [
            upload_part_key(id, 1),
            upload_part_key(id, 10_000),
            upload_target_key(id),
        ] {
            assert_eq!(classify(&key), KeyKind::Upload(id.into()), "{key}");
            assert!(key.starts_with(&upload_prefix(id)), "{key}");
        }
        for foreign in [
            format!("uploads/{id}/0"),
            format!("uploads/{id}/01"),
            format!("uploads/{id}/x"),
            format!("uploads/{id}/+1"),
            format!("uploads/{id}/"),
            format!("uploads/{id}"),
            format!("uploads/{}/1", id.to_uppercase()),
            format!("uploads/{}/1", &id[1..]),
            format!("uploads/{id}/1/2"),
            format!("uploads/{id}/targets"),
            "uploads/readme".into(),
        ] {
            assert_eq!(classify(&foreign), KeyKind::Foreign, "{foreign}");
        }
    }
}
