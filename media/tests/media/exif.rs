//! EXIF: files made here with kamadak-exif's writer, and real camera photos
//! from Debian's goexif package.

use std::io::Cursor;

use asset_catalog_media::{Gps, Limits, MediaKind, thumbnails};
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::{DynamicImage, ImageFormat};
use time::macros::datetime;

use crate::common::{
    GOEXIF_DIR, GOEXIF_PACKAGE, debian_file, describe_bytes, encode, picture, png_chunk,
};

fn ascii(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

fn rationals(tag: Tag, parts: [(u32, u32); 3]) -> Field {
    let value = parts
        .iter()
        .map(|&(num, denom)| Rational { num, denom })
        .collect();
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(value),
    }
}

/// A TIFF-structured EXIF block as a camera in Paris on UTC+2 would write it.
fn camera_exif(orientation: u16) -> Vec<u8> {
    let fields = [
        ascii(Tag::Make, "Test Camera Co.  "),
        ascii(Tag::Model, "TC-1\u{202e}"),
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        },
        ascii(Tag::DateTimeOriginal, "2024:05:17 14:03:59"),
        ascii(Tag::SubSecTimeOriginal, "25"),
        ascii(Tag::OffsetTimeOriginal, "+02:00"),
        ascii(Tag::GPSLatitudeRef, "N"),
        rationals(Tag::GPSLatitude, [(48, 1), (51, 1), (2400, 100)]),
        ascii(Tag::GPSLongitudeRef, "W"),
        rationals(Tag::GPSLongitude, [(2, 1), (21, 1), (300, 100)]),
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = Cursor::new(Vec::new());
    writer
        .write(&mut tiff, false)
        .expect("kamadak-exif writes EXIF");
    tiff.into_inner()
}

/// A JPEG with `exif` in an APP1 segment right after SOI.
fn jpeg_with_exif(image: &DynamicImage, exif: &[u8]) -> Vec<u8> {
    let plain = encode(image, ImageFormat::Jpeg);
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend_from_slice(exif);
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&[0xFF, 0xE1]);
    jpeg.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
    jpeg.extend(segment);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}

fn check_camera_fields(media: &asset_catalog_media::Media) {
    assert_eq!(
        media.taken_at,
        Some(datetime!(2024-05-17 14:03:59.25 +02:00))
    );
    assert_eq!(media.camera_make.as_deref(), Some("Test Camera Co."));
    // The right-to-left override is dropped: it would reorder what a UI shows.
    assert_eq!(media.camera_model.as_deref(), Some("TC-1"));
    assert_eq!(media.orientation, Some(6));
}

#[test]
fn exif_made_here_is_read_from_a_jpeg() {
    let image = DynamicImage::ImageRgb8(picture(300, 200));
    let jpeg = jpeg_with_exif(&image, &camera_exif(6));
    let media = describe_bytes(&jpeg, "IMG_0001.JPG", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Image, "image/jpeg")
    );
    // As stored, before orientation.
    assert_eq!((media.width, media.height), (Some(300), Some(200)));
    check_camera_fields(&media);
    assert_eq!(media.gps, None, "GPS is dropped unless asked for");

    let media = describe_bytes(&jpeg, "IMG_0001.JPG", true);
    let Some(Gps {
        latitude,
        longitude,
    }) = media.gps
    else {
        panic!("GPS was asked for: {media:?}");
    };
    assert!((latitude - 48.856_666).abs() < 1e-5, "{latitude}");
    assert!((longitude + 2.350_833).abs() < 1e-5, "{longitude}");

    // The thumbnails use the orientation describe found: upright, so portrait.
    let made = thumbnails(&jpeg, "image/jpeg", media.orientation, &Limits::default())
        .expect("a valid JPEG");
    assert_eq!((made[0].width, made[0].height), (171, 256));
}

#[test]
fn exif_made_here_is_read_from_a_png() {
    let plain = encode(&DynamicImage::ImageRgb8(picture(40, 30)), ImageFormat::Png);
    // Signature and IHDR (8 + 25 bytes), then eXIf, then the rest.
    let mut png = plain[..33].to_vec();
    png.extend(png_chunk(b"eXIf", &camera_exif(6)));
    png.extend_from_slice(&plain[33..]);
    let media = describe_bytes(&png, "x.png", false);
    assert_eq!((media.width, media.height), (Some(40), Some(30)));
    check_camera_fields(&media);
}

#[test]
fn a_real_nikon_photo_with_gps() {
    let path = format!("{GOEXIF_DIR}/sample1.jpg");
    let Some(bytes) = debian_file(GOEXIF_PACKAGE, &path) else {
        return;
    };
    let media = describe_bytes(&bytes, "sample1.jpg", true);
    assert_eq!((media.width, media.height), (Some(500), Some(375)));
    assert_eq!(media.camera_make.as_deref(), Some("NIKON CORPORATION"));
    assert_eq!(media.camera_model.as_deref(), Some("NIKON D2H"));
    // No offset recorded (EXIF 2.2): taken as UTC; SubSecTimeOriginal is 63.
    assert_eq!(media.taken_at, Some(datetime!(2003-11-23 18:07:37.63 UTC)));
    assert_eq!(media.orientation, Some(1));
    let gps = media.gps.expect("the photo has a position");
    assert!((gps.latitude - (39.0 + 54.0 / 60.0 + 56.0 / 3600.0)).abs() < 1e-6);
    assert!((gps.longitude - (116.0 + 23.0 / 60.0 + 27.0 / 3600.0)).abs() < 1e-6);

    let made = thumbnails(
        &bytes,
        &media.media_type,
        media.orientation,
        &Limits::default(),
    )
    .expect("a real photo");
    let sizes: Vec<_> = made
        .iter()
        .map(|t| (t.size, t.width, t.height, t.ext))
        .collect();
    assert_eq!(sizes, [(256, 256, 192, "jpg"), (1024, 500, 375, "jpg")]);
}

#[test]
fn a_real_iphone_photo_held_upright() {
    let path = format!("{GOEXIF_DIR}/samples/has-lens-info.jpg");
    let Some(bytes) = debian_file(GOEXIF_PACKAGE, &path) else {
        return;
    };
    let media = describe_bytes(&bytes, "IMG_1234.JPG", true);
    assert_eq!(media.camera_make.as_deref(), Some("Apple"));
    assert_eq!(media.camera_model.as_deref(), Some("iPhone 4S"));
    assert_eq!(media.taken_at, Some(datetime!(2014-09-01 15:03:47.88 UTC)));
    assert_eq!(media.orientation, Some(6));
    assert_eq!((media.width, media.height), (Some(205), Some(102)));
    let gps = media.gps.expect("the photo has a position");
    assert!((gps.latitude - 59.332_547).abs() < 1e-5, "{gps:?}");

    let made = thumbnails(&bytes, "image/jpeg", media.orientation, &Limits::default())
        .expect("a real photo");
    // Turned as the tag says: the stored 205 x 102 becomes 102 x 205. (This
    // sample's pixels were already turned by whatever shrank it, but the tag
    // still says 6, and the tag is what every viewer follows.)
    assert_eq!((made[0].width, made[0].height), (102, 205));
}

#[test]
fn real_exif_oddities_do_not_break_describe() {
    let Some(names) = std::fs::read_dir(format!("{GOEXIF_DIR}/samples")).ok() else {
        eprintln!("SKIPPED: {GOEXIF_DIR}/samples is absent; `apt-get install {GOEXIF_PACKAGE}`");
        return;
    };
    let mut seen = 0;
    for entry in names.flatten() {
        let bytes = std::fs::read(entry.path()).expect("a readable sample");
        let name = entry.file_name().to_string_lossy().into_owned();
        // The package's samples are mostly EXIF blocks cut from real photos;
        // whatever they hold, describe answers.
        let media = describe_bytes(&bytes, &name, true);
        if let Some(gps) = media.gps {
            assert!(
                gps.latitude.abs() <= 90.0 && gps.longitude.abs() <= 180.0,
                "{name}"
            );
        }
        seen += 1;
    }
    assert!(seen > 50, "only {seen} samples");
}
