//! The metadata and thumbnail jobs: read an asset's bytes from the bucket
//! and hand them to `asset-catalog-media` (pure functions, run on the jobs'
//! blocking threads), then record what they found. The metadata job reads
//! through a seekable view of the object (parsers read headers and seek,
//! so a 50 GB video costs a few range reads); the thumbnail job reads the
//! whole image, within `[jobs] max_image_bytes`.

use std::sync::Arc;

use asset_catalog_media::{DescribeOptions, Limits, MediaError};
use asset_catalog_proto::{Asset, MediaKind, Sha256Hex};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::buffered::BufReader;
use tokio_util::io::SyncIoBridge;

use super::{Ctx, JobError};
use crate::index::jobs::JobKind;
use crate::storage::{ObjectAttrs, StorageError, keys};

impl From<StorageError> for JobError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound { key } => Self::Permanent(format!(
                "the object {key} is missing from the bucket (scrub marks it; see `fsck`)"
            )),
            other => Self::Transient(other.to_string()),
        }
    }
}

impl From<MediaError> for JobError {
    fn from(e: MediaError) -> Self {
        if e.is_permanent() {
            Self::Permanent(e.to_string())
        } else {
            Self::Transient(e.to_string())
        }
    }
}

/// The decoding bounds `[jobs]` sets.
fn limits(ctx: &Ctx) -> Limits {
    Limits {
        max_pixels: ctx.config.max_image_pixels,
        ..Limits::default()
    }
}

/// Sniff the type and read what the bytes say; queue thumbnails for
/// images that can have them.
pub(super) async fn metadata(ctx: &Ctx, sha: &Sha256Hex) -> Result<(), JobError> {
    let index = ctx.catalog.index();
    let Some(asset) = index.get(sha).await? else {
        return Ok(());
    };
    let head = read_head(ctx, &asset).await?;
    let storage = ctx.catalog.storage();
    let meta = storage.head(&asset.key).await?;
    let reader = SyncIoBridge::new(BufReader::new(storage.object_store(), &meta));
    let options = DescribeOptions {
        keep_gps: ctx.config.keep_gps,
        limits: limits(ctx),
    };
    let name = asset.name.clone();
    let media = ctx
        .cpu
        .spawn_blocking(move || asset_catalog_media::describe(reader, &head, &name, &options))
        .await
        .map_err(|e| JobError::Transient(format!("the metadata reader stopped: {e}")))??;
    if !index.record_media(sha, &media).await? {
        return Ok(());
    }
    if media.kind == MediaKind::Image && asset_catalog_media::can_thumbnail(&media.media_type) {
        index.enqueue_job(JobKind::Thumbnail, sha).await?;
    } else {
        index.record_thumbnail(sha, "").await?;
    }
    Ok(())
}

/// The first bytes, for sniffing.
async fn read_head(ctx: &Ctx, asset: &Asset) -> Result<Vec<u8>, JobError> {
    let end = asset.size.min(asset_catalog_media::SNIFF_BYTES as u64);
    if end == 0 {
        return Ok(Vec::new());
    }
    let body = ctx.catalog.storage().get(&asset.key, Some(0..end)).await?;
    let chunks: Vec<Bytes> = body.stream.try_collect().await?;
    Ok(chunks.concat())
}

/// Make and store the thumbnails of an image (or find them stored: after
/// `reindex`, the bucket still has them).
pub(super) async fn thumbnail(ctx: &Ctx, sha: &Sha256Hex) -> Result<(), JobError> {
    let index = ctx.catalog.index();
    let Some(asset) = index.get(sha).await? else {
        return Ok(());
    };
    let Some(media) = asset.media.clone() else {
        index.enqueue_job(JobKind::Metadata, sha).await?;
        return Err(JobError::Transient(
            "the metadata job has not run yet; queued it".into(),
        ));
    };
    if let Some(ext) = stored_thumbnails(ctx, sha).await? {
        index.record_thumbnail(sha, ext).await?;
        return Ok(());
    }
    if asset.size > ctx.config.max_image_bytes {
        index.record_thumbnail(sha, "").await?;
        return Err(JobError::Permanent(format!(
            "the image is {} bytes, over [jobs] max_image_bytes ({}); no thumbnail is made",
            asset.size, ctx.config.max_image_bytes
        )));
    }
    let body = ctx.catalog.storage().get(&asset.key, None).await?;
    let chunks: Vec<Bytes> = body.stream.try_collect().await?;
    let bytes = Arc::new(chunks.concat());
    let limits = limits(ctx);
    let made = ctx
        .cpu
        .spawn_blocking(move || {
            asset_catalog_media::thumbnails(&bytes, &media.media_type, media.orientation, &limits)
        })
        .await
        .map_err(|e| JobError::Transient(format!("the thumbnailer stopped: {e}")))?;
    let made = match made {
        Ok(made) => made,
        Err(e) => {
            if e.is_permanent() {
                index.record_thumbnail(sha, "").await?;
            }
            return Err(e.into());
        }
    };
    let mut ext = "";
    for thumb in made {
        let key = keys::thumbnail_key(sha, thumb.size, thumb.ext);
        let attrs = ObjectAttrs {
            content_type: thumb.content_type,
            description: None,
        };
        ctx.catalog
            .storage()
            .put(&key, vec![Bytes::from(thumb.bytes)], attrs)
            .await?;
        ext = thumb.ext;
    }
    index.record_thumbnail(sha, ext).await?;
    Ok(())
}

/// The extension of thumbnails of every size already in the bucket.
async fn stored_thumbnails(ctx: &Ctx, sha: &Sha256Hex) -> Result<Option<&'static str>, JobError> {
    'ext: for ext in ["jpg", "png"] {
        for size in asset_catalog_media::THUMBNAIL_SIZES {
            match ctx
                .catalog
                .storage()
                .head(&keys::thumbnail_key(sha, size, ext))
                .await
            {
                Ok(_) => {}
                Err(StorageError::NotFound { .. }) => continue 'ext,
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Some(ext));
    }
    Ok(None)
}
