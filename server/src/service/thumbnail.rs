//! An asset's thumbnails, as the thumbnail job stored them (see
//! `jobs/media.rs`): read access only, never made on request.

use asset_catalog_proto::Sha256Hex;

use super::{Catalog, ServiceError};
use crate::storage::{ObjectBody, StorageError, keys};

/// One thumbnail being read.
#[derive(Debug)]
pub struct Thumbnail {
    pub body: ObjectBody,
    pub content_type: &'static str,
    /// Strong: the same hash, size and format give the same bytes.
    pub etag: String,
}

impl Catalog {
    /// The thumbnail of `sha` at most `size` pixels on its longest side
    /// (one of the sizes the job makes).
    pub async fn thumbnail(&self, sha: &Sha256Hex, size: u32) -> Result<Thumbnail, ServiceError> {
        if !asset_catalog_media::THUMBNAIL_SIZES.contains(&size) {
            return Err(ServiceError::BadRequest(format!(
                "size={size} is not one this server makes; use one of {:?}",
                asset_catalog_media::THUMBNAIL_SIZES
            )));
        }
        let asset = self.asset(sha).await?;
        let none = |why| ServiceError::NoThumbnail {
            sha: sha.clone(),
            why,
        };
        let ext = match asset.thumbnail {
            None => return Err(none("the jobs have not looked at it yet; try again later")),
            Some(false) => {
                return Err(none(
                    "none can be made (not an image, or not a readable one)",
                ));
            }
            Some(true) => self
                .inner
                .index
                .thumbnail_ext(sha)
                .await?
                .ok_or_else(|| none("it was removed"))?,
        };
        let key = keys::thumbnail_key(sha, size, &ext);
        let body = match self.inner.storage.get(&key, None).await {
            Ok(body) => body,
            Err(StorageError::NotFound { .. }) => {
                tracing::warn!(asset.sha256 = %sha, key, "an indexed thumbnail is missing from the bucket");
                return Err(none("its object is missing from the bucket"));
            }
            Err(e) => return Err(e.into()),
        };
        let content_type = if ext == "png" {
            "image/png"
        } else {
            "image/jpeg"
        };
        Ok(Thumbnail {
            body,
            content_type,
            etag: format!("\"{sha}-{size}.{ext}\""),
        })
    }
}
