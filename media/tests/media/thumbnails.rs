//! Thumbnails: sizes, orientation, transparency, determinism, and refusal of
//! bombs, truncated data and noise.

use std::time::{Duration, Instant};

use asset_catalog_media::{
    Exceeded, Limits, MediaError, THUMBNAIL_SIZES, Thumbnail, can_thumbnail, thumbnails,
};
use image::{DynamicImage, GenericImageView, ImageFormat, RgbImage};

use crate::common::{
    Bytes, GOEXIF_DIR, GOEXIF_PACKAGE, debian_file, encode, picture, png_claiming,
    transparent_picture,
};

const FORMATS: [(ImageFormat, &str); 6] = [
    (ImageFormat::Jpeg, "image/jpeg"),
    (ImageFormat::Png, "image/png"),
    (ImageFormat::Gif, "image/gif"),
    (ImageFormat::WebP, "image/webp"),
    (ImageFormat::Bmp, "image/bmp"),
    (ImageFormat::Tiff, "image/tiff"),
];

fn make(
    bytes: &[u8],
    media_type: &str,
    orientation: Option<u16>,
) -> Result<Vec<Thumbnail>, MediaError> {
    thumbnails(bytes, media_type, orientation, &Limits::default())
}

/// Decode a thumbnail again and check it says what it claims.
fn reopen(thumbnail: &Thumbnail) -> DynamicImage {
    let format = match thumbnail.ext {
        "jpg" => ImageFormat::Jpeg,
        "png" => ImageFormat::Png,
        other => panic!("unexpected extension {other}"),
    };
    let image =
        image::load_from_memory_with_format(&thumbnail.bytes, format).expect("a thumbnail decodes");
    assert_eq!(image.dimensions(), (thumbnail.width, thumbnail.height));
    image
}

#[test]
fn every_format_gives_both_sizes() {
    let image = DynamicImage::ImageRgb8(picture(1600, 1000));
    for (format, media_type) in FORMATS {
        assert!(can_thumbnail(media_type));
        let made = make(&encode(&image, format), media_type, None).expect(media_type);
        let sizes: Vec<_> = made.iter().map(|t| (t.size, t.width, t.height)).collect();
        assert_eq!(sizes, [(256, 256, 160), (1024, 1024, 640)], "{media_type}");
        for thumbnail in &made {
            assert_eq!(
                (thumbnail.ext, thumbnail.content_type),
                ("jpg", "image/jpeg")
            );
            let upright = reopen(thumbnail).to_rgb8();
            // The red corner block survives the resize (GIF's palette too).
            let [r, g, _] = upright.get_pixel(5, 5).0;
            assert!(
                r > 200 && g < 60,
                "{media_type}: {:?}",
                upright.get_pixel(5, 5)
            );
        }
    }
    assert!(!can_thumbnail("image/svg+xml"));
    assert!(!can_thumbnail("image/heif"));
    assert!(matches!(
        make(b"<svg/>", "image/svg+xml", None),
        Err(MediaError::Unsupported(_))
    ));
}

#[test]
fn small_images_are_never_upscaled() {
    let bytes = encode(&DynamicImage::ImageRgb8(picture(100, 60)), ImageFormat::Png);
    let made = make(&bytes, "image/png", None).expect("a valid PNG");
    assert_eq!(made.len(), THUMBNAIL_SIZES.len());
    assert!(made.iter().all(|t| (t.width, t.height) == (100, 60)));
}

#[test]
fn orientation_6_turns_the_picture_clockwise() {
    let bytes = encode(
        &DynamicImage::ImageRgb8(picture(400, 200)),
        ImageFormat::Png,
    );
    let made = make(&bytes, "image/png", Some(6)).expect("a valid PNG");
    assert_eq!((made[0].width, made[0].height), (128, 256));
    assert_eq!((made[1].width, made[1].height), (200, 400));
    // The red block was top-left; turned a quarter clockwise it is top-right.
    let upright = reopen(&made[1]).to_rgb8();
    let red = |x, y| upright.get_pixel(x, y).0[0] > 200 && upright.get_pixel(x, y).0[1] < 60;
    assert!(red(195, 5), "{:?}", upright.get_pixel(195, 5));
    assert!(!red(5, 5), "{:?}", upright.get_pixel(5, 5));
    // Out-of-range values are ignored, not errors.
    let made = make(&bytes, "image/png", Some(42)).expect("a valid PNG");
    assert_eq!((made[0].width, made[0].height), (256, 128));
}

/// Mean absolute difference per channel.
fn difference(a: &RgbImage, b: &RgbImage) -> f64 {
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn all_eight_orientations_of_a_real_photo_come_out_upright() {
    // f1 .. f8 hold one picture stored in each EXIF orientation.
    let mut upright = Vec::new();
    for n in 1..=8 {
        let path = format!("{GOEXIF_DIR}/samples/f{n}-exif.jpg");
        let Some(bytes) = debian_file(GOEXIF_PACKAGE, &path) else {
            return;
        };
        let media = crate::common::describe_bytes(&bytes, "f.jpg", false);
        assert_eq!(media.orientation, Some(n));
        let made = make(&bytes, "image/jpeg", media.orientation).expect("a real JPEG");
        upright.push(reopen(&made[0]).to_rgb8());
    }
    for (n, image) in upright.iter().enumerate().skip(1) {
        assert_eq!(image.dimensions(), upright[0].dimensions(), "f{}", n + 1);
        let diff = difference(image, &upright[0]);
        assert!(
            diff < 12.0,
            "f{} differs from f1 by {diff:.1} per channel",
            n + 1
        );
    }
}

#[test]
fn transparency_gives_png_and_opaque_alpha_gives_jpeg() {
    let holed = DynamicImage::ImageRgba8(transparent_picture(600, 300));
    let made = make(&encode(&holed, ImageFormat::Png), "image/png", None).expect("a valid PNG");
    assert!(
        made.iter()
            .all(|t| t.ext == "png" && t.content_type == "image/png")
    );
    let centre = reopen(&made[0]).to_rgba8();
    assert_eq!(
        centre.get_pixel(128, 64).0[3],
        0,
        "the hole stays transparent"
    );

    let opaque = DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(picture(600, 300)).to_rgba8());
    let made = make(&encode(&opaque, ImageFormat::Png), "image/png", None).expect("a valid PNG");
    assert!(made.iter().all(|t| t.ext == "jpg"));
}

#[test]
fn the_same_bytes_give_the_same_thumbnails() {
    let bytes = encode(
        &DynamicImage::ImageRgb8(picture(900, 700)),
        ImageFormat::Jpeg,
    );
    let first = make(&bytes, "image/jpeg", Some(3)).expect("a valid JPEG");
    let second = make(&bytes, "image/jpeg", Some(3)).expect("a valid JPEG");
    assert_eq!(first, second);
}

#[test]
fn bomb_headers_are_refused_before_decoding() {
    let started = Instant::now();
    let error = make(&png_claiming(100_000, 100_000), "image/png", None).expect_err("a bomb");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            MediaError::TooLarge {
                width: 100_000,
                height: 100_000,
                limit: Exceeded::Width(_)
            }
        ),
        "{error:?}"
    );
    assert!(error.is_permanent());
    assert_eq!(
        error.to_string(),
        "the image is 100000 x 100000 pixels, over the limit of 32768 pixels wide"
    );

    // Each side allowed, the product not: a pixel flood.
    let error = make(&png_claiming(20_000, 20_000), "image/png", None).expect_err("a flood");
    assert!(
        matches!(
            error,
            MediaError::TooLarge {
                limit: Exceeded::Pixels(_),
                ..
            }
        ),
        "{error:?}"
    );

    // Tighter limits apply to real images too.
    let bytes = encode(
        &DynamicImage::ImageRgb8(picture(320, 200)),
        ImageFormat::Jpeg,
    );
    let tight = Limits {
        max_pixels: 10_000,
        ..Limits::default()
    };
    let error = thumbnails(&bytes, "image/jpeg", None, &tight).expect_err("over the limit");
    assert!(
        matches!(
            error,
            MediaError::TooLarge {
                width: 320,
                height: 200,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn truncated_images_fail_as_corrupt() {
    // Noise compresses badly, so half the file is half the pixels.
    let mut noise = Bytes::seeded(3);
    let image = DynamicImage::ImageRgb8(RgbImage::from_fn(640, 480, |_, _| {
        image::Rgb([noise.next() as u8, noise.next() as u8, noise.next() as u8])
    }));
    for (format, media_type) in FORMATS {
        let bytes = encode(&image, format);
        let cut = &bytes[..bytes.len() * 6 / 10];
        let result = make(cut, media_type, None);
        assert!(
            matches!(result, Err(MediaError::Corrupt(_))),
            "{media_type} cut at 60%: {result:?}"
        );
    }
}

#[test]
fn random_bytes_fail_without_panicking() {
    let mut source = Bytes::seeded(11);
    for (_, media_type) in FORMATS {
        for len in [0, 1, 2, 16, 100, 10_000] {
            let noise = source.fill(len);
            let result = make(&noise, media_type, None);
            assert!(
                matches!(
                    result,
                    Err(MediaError::Corrupt(_) | MediaError::Unsupported(_))
                ),
                "{media_type}, {len} bytes: {result:?}"
            );
        }
    }
    // Noise behind a real JPEG start.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    jpeg.extend(source.fill(50_000));
    assert!(make(&jpeg, "image/jpeg", None).is_err());
}

#[test]
fn real_icons_from_debian() {
    // debconf is in every Debian system; adwaita-icon-theme in most desktops.
    let icons = [
        (
            "debconf",
            "/usr/share/pixmaps/debian-logo.png",
            (48, 48),
            (48, 48),
        ),
        (
            "adwaita-icon-theme",
            "/usr/share/icons/Adwaita/512x512/places/folder-pictures.png",
            (256, 256),
            (512, 512),
        ),
    ];
    for (package, path, small, large) in icons {
        let Some(bytes) = debian_file(package, path) else {
            continue;
        };
        let media = crate::common::describe_bytes(&bytes, "icon.png", false);
        assert_eq!(media.media_type, "image/png");
        assert_eq!((media.width, media.height), (Some(large.0), Some(large.1)));
        let made = make(&bytes, "image/png", None).expect(path);
        assert_eq!((made[0].width, made[0].height), small, "{path}");
        assert_eq!((made[1].width, made[1].height), large, "{path}");
        // Icons have transparent corners.
        assert!(made.iter().all(|t| t.ext == "png"), "{path}");
        reopen(&made[0]);
    }
}

/// `cargo test -p asset-catalog-media --release -- --ignored --nocapture twelve`
#[test]
#[ignore = "a timing, meaningful in release builds only"]
fn twelve_megapixel_jpeg_timing() {
    let mut noise = Bytes::seeded(5);
    let base = picture(4000, 3000);
    let photo = RgbImage::from_fn(4000, 3000, |x, y| {
        let [r, g, b] = base.get_pixel(x, y).0;
        let n = (noise.next() % 24) as u8;
        image::Rgb([
            r.saturating_add(n),
            g.saturating_add(n),
            b.saturating_add(n),
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&photo)
        .expect("encodes");
    let runs = 5;
    let started = Instant::now();
    for _ in 0..runs {
        let made = make(&jpeg, "image/jpeg", Some(6)).expect("a valid JPEG");
        assert_eq!((made[1].width, made[1].height), (768, 1024));
    }
    let each = started.elapsed() / runs;
    eprintln!(
        "12 MP JPEG ({} KiB) -> 256 + 1024 thumbnails: {each:?} each",
        jpeg.len() / 1024
    );
}
