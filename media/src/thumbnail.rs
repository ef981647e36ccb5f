//! Thumbnails: decode within limits, shrink, turn upright, encode. The same
//! bytes always give the same thumbnails.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, GenericImageView};

use crate::{Limits, MediaError, raster};

/// Longest side of each thumbnail, in pixels. A smaller image keeps its size:
/// thumbnails are never upscaled.
pub const THUMBNAIL_SIZES: [u32; 2] = [256, 1024];

/// JPEG quality for opaque thumbnails: no visible artefacts in a grid, about
/// a tenth of the bytes of quality 100.
const JPEG_QUALITY: u8 = 80;

/// One encoded thumbnail.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The entry of [`THUMBNAIL_SIZES`] this is for.
    pub size: u32,
    /// `jpg` or `png`.
    pub ext: &'static str,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// Of the upright image.
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Whether [`thumbnails`] can decode this sniffed media type: JPEG, PNG,
/// GIF (first frame), WebP, BMP and TIFF.
pub fn can_thumbnail(media_type: &str) -> bool {
    raster::format_of(media_type).is_some()
}

/// Decode `bytes` (the whole image) within `limits`, turn it upright by
/// `orientation` (EXIF 1 to 8; `None` uses what the image's own metadata
/// says), and encode one thumbnail per [`THUMBNAIL_SIZES`], in that order:
/// JPEG at quality 80 when every pixel is opaque, PNG when any is not.
pub fn thumbnails(
    bytes: &[u8],
    media_type: &str,
    orientation: Option<u16>,
    limits: &Limits,
) -> Result<Vec<Thumbnail>, MediaError> {
    let format = raster::format_of(media_type).ok_or_else(|| {
        MediaError::Unsupported(format!("thumbnails are not made for {media_type}"))
    })?;
    let (image, embedded) = raster::decode(bytes, format, limits)?;
    let orientation = orientation
        .and_then(|o| u8::try_from(o).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(embedded);
    let transparent = has_transparency(&image);
    let (width, height) = image.dimensions();

    // Largest first, each smaller one shrunk from the one before: shrinking a
    // 12-megapixel photo once is most of the work.
    let mut sizes = THUMBNAIL_SIZES;
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut source = image;
    let mut made = Vec::with_capacity(sizes.len());
    for size in sizes {
        let (w, h) = fit(width, height, size);
        source = shrink(source, w, h);
        let mut upright = source.clone();
        upright.apply_orientation(orientation);
        made.push(encode(&upright, size, transparent)?);
    }
    made.sort_by_key(|t| t.size);
    Ok(made)
}

/// The size that fits `width` x `height` into a `size` square, keeping the
/// aspect ratio, never larger than the original, never zero.
fn fit(width: u32, height: u32, size: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= size {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(size) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(size).max(1)
    };
    (scale(width), scale(height))
}

/// Area averaging (every source pixel counts once: no aliasing, and about
/// 0.1 s for 12 megapixels) when shrinking by 2 or more; Catmull-Rom below
/// that, where averaging whole pixels would show steps and the source is
/// small anyway.
fn shrink(image: DynamicImage, width: u32, height: u32) -> DynamicImage {
    if image.dimensions() == (width, height) {
        return image;
    }
    if image.width() >= width * 2 && image.height() >= height * 2 {
        image.thumbnail_exact(width, height)
    } else {
        image.resize_exact(width, height, FilterType::CatmullRom)
    }
}

/// Whether any pixel is less than fully opaque.
fn has_transparency(image: &DynamicImage) -> bool {
    if !image.color().has_alpha() {
        return false;
    }
    match image {
        DynamicImage::ImageLumaA8(i) => i.pixels().any(|p| p.0[1] < u8::MAX),
        DynamicImage::ImageRgba8(i) => i.pixels().any(|p| p.0[3] < u8::MAX),
        DynamicImage::ImageLumaA16(i) => i.pixels().any(|p| p.0[1] < u16::MAX),
        DynamicImage::ImageRgba16(i) => i.pixels().any(|p| p.0[3] < u16::MAX),
        DynamicImage::ImageRgba32F(i) => i.pixels().any(|p| p.0[3] < 1.0),
        _ => true,
    }
}

fn encode(image: &DynamicImage, size: u32, transparent: bool) -> Result<Thumbnail, MediaError> {
    let mut bytes = Vec::new();
    let failed = |e: image::ImageError| {
        MediaError::Unsupported(format!("the thumbnail could not be encoded: {e}"))
    };
    let (ext, content_type) = if transparent {
        let rgba = image.to_rgba8();
        let encoder =
            PngEncoder::new_with_quality(&mut bytes, CompressionType::Default, PngFilter::Adaptive);
        rgba.write_with_encoder(encoder).map_err(failed)?;
        ("png", "image/png")
    } else {
        let rgb = image.to_rgb8();
        let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
        rgb.write_with_encoder(encoder).map_err(failed)?;
        ("jpg", "image/jpeg")
    };
    Ok(Thumbnail {
        size,
        ext,
        content_type,
        width: image.width(),
        height: image.height(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_ratio_and_never_upscales() {
        assert_eq!(fit(4000, 3000, 1024), (1024, 768));
        assert_eq!(fit(3000, 4000, 256), (192, 256));
        assert_eq!(fit(100, 50, 256), (100, 50));
        assert_eq!(fit(100_000, 1, 256), (256, 1));
        assert_eq!(fit(1024, 1024, 1024), (1024, 1024));
    }
}
