//! Bounds on decoding, checked against an image's header before a single
//! pixel buffer is allocated (decompression bombs, pixel floods).

use crate::error::{Exceeded, MediaError};

/// Decoding bounds against decompression bombs.
///
/// The defaults let every camera photo through, from phones to 100-megapixel
/// medium format (11648 x 8736), and stitched panoramas up to 32768 pixels
/// on a side, while a file that claims more is refused from its header. At
/// the pixel cap a 16-bit RGBA image needs exactly the 1 GiB of `max_alloc`.
/// `max_alloc` bounds the decoded pixels; a decoder's working memory comes
/// on top (a progressive JPEG keeps its coefficients: about twice its
/// 8-bit pixels), and the thumbnails add a few MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Widest image decoded, in pixels.
    pub max_width: u32,
    /// Highest image decoded, in pixels.
    pub max_height: u32,
    /// Most pixels (width x height) in one decoded image.
    pub max_pixels: u64,
    /// Most bytes one decode may allocate (the decoded pixels count).
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 32_768,
            max_height: 32_768,
            max_pixels: 128 << 20,
            max_alloc: 1 << 30,
        }
    }
}

impl Limits {
    /// `Ok` when an image of this size, holding `bytes` once decoded, may be
    /// decoded; otherwise which bound it is over.
    pub(crate) fn check(&self, width: u32, height: u32, bytes: u64) -> Result<(), MediaError> {
        let over = |limit| MediaError::TooLarge {
            width,
            height,
            limit,
        };
        if width > self.max_width {
            return Err(over(Exceeded::Width(self.max_width)));
        }
        if height > self.max_height {
            return Err(over(Exceeded::Height(self.max_height)));
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(over(Exceeded::Pixels(self.max_pixels)));
        }
        if bytes > self.max_alloc {
            return Err(over(Exceeded::Memory(self.max_alloc)));
        }
        Ok(())
    }

    /// The same bounds in the `image` crate's terms, for its decoders' own
    /// checks (they also cap what a decoder allocates besides the pixels).
    pub(crate) fn for_decoder(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_medium_format_photo_passes_and_a_pixel_flood_does_not() {
        let limits = Limits::default();
        assert!(limits.check(11_648, 8_736, 11_648 * 8_736 * 3).is_ok());
        assert!(limits.check(30_000, 4_000, 30_000 * 4_000 * 3).is_ok());
        let flood = limits.check(20_000, 20_000, 20_000 * 20_000 * 3);
        assert!(matches!(
            flood,
            Err(MediaError::TooLarge {
                limit: Exceeded::Pixels(_),
                ..
            })
        ));
        assert!(matches!(
            limits.check(100_000, 10, 3_000_000),
            Err(MediaError::TooLarge {
                limit: Exceeded::Width(32_768),
                ..
            })
        ));
        assert!(matches!(
            limits.check(10_000, 10_000, 10_000 * 10_000 * 16),
            Err(MediaError::TooLarge {
                limit: Exceeded::Memory(_),
                ..
            })
        ));
    }
}
