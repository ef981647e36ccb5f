//! Damaged files, made by flipping bytes of valid ones: `describe` answers
//! and `thumbnails` fails or succeeds, and neither panics.

use std::panic::{AssertUnwindSafe, catch_unwind};

use asset_catalog_media::{Limits, sniff, thumbnails};
use image::{DynamicImage, ImageFormat};

use crate::common::{Bytes, GOEXIF_DIR, describe_bytes, encode, picture, transparent_picture};

/// Valid files of every image type, plus a real photo when installed.
fn originals() -> Vec<(String, Vec<u8>)> {
    let opaque = DynamicImage::ImageRgb8(picture(96, 64));
    let clear = DynamicImage::ImageRgba8(transparent_picture(64, 96));
    let mut files = Vec::new();
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ] {
        files.push((format!("{format:?}"), encode(&opaque, format)));
        if format != ImageFormat::Jpeg {
            files.push((format!("{format:?} with alpha"), encode(&clear, format)));
        }
    }
    if let Ok(photo) = std::fs::read(format!("{GOEXIF_DIR}/sample1.jpg")) {
        files.push(("sample1.jpg".into(), photo));
    }
    files
}

#[test]
fn flipped_bytes_never_panic() {
    let mut random = Bytes::seeded(1234);
    let limits = Limits::default();
    for (label, original) in originals() {
        let (_, media_type) = sniff(&original, "x");
        for round in 0..60 {
            let mut damaged = original.clone();
            for _ in 0..1 + random.below(8) {
                let at = random.below(damaged.len());
                damaged[at] = random.next() as u8;
            }
            if round % 4 == 0 {
                damaged.truncate(random.below(damaged.len()) + 1);
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let media = describe_bytes(&damaged, "damaged", true);
                let made = thumbnails(&damaged, &media_type, media.orientation, &limits);
                if let Ok(made) = made {
                    assert!(made.iter().all(|t| t.width <= 1024 && t.height <= 1024));
                }
            }));
            assert!(outcome.is_ok(), "{label}, round {round} panicked");
        }
    }
}
