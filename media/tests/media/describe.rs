//! `sniff` and `describe` on every image format the crate decodes, on text,
//! on damaged files and on a failing reader.

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use asset_catalog_media::{DescribeOptions, MediaError, MediaKind, describe, sniff};
use image::{DynamicImage, ImageFormat};

use crate::common::{Bytes, describe_bytes, encode, picture, png_claiming};

const FORMATS: [(ImageFormat, &str, &str); 6] = [
    (ImageFormat::Jpeg, "image/jpeg", "photo.jpg"),
    (ImageFormat::Png, "image/png", "photo.png"),
    (ImageFormat::Gif, "image/gif", "photo.gif"),
    (ImageFormat::WebP, "image/webp", "photo.webp"),
    (ImageFormat::Bmp, "image/bmp", "photo.bmp"),
    (ImageFormat::Tiff, "image/tiff", "photo.tiff"),
];

#[test]
fn every_decoded_format_is_sniffed_and_measured() {
    let image = DynamicImage::ImageRgb8(picture(320, 200));
    for (format, media_type, name) in FORMATS {
        let bytes = encode(&image, format);
        // The name lies; the bytes win.
        assert_eq!(
            sniff(&bytes, "notes.txt"),
            (MediaKind::Image, media_type.to_owned())
        );
        let media = describe_bytes(&bytes, name, false);
        assert_eq!(media.kind, MediaKind::Image, "{media_type}");
        assert_eq!(media.media_type, media_type);
        assert_eq!(
            (media.width, media.height),
            (Some(320), Some(200)),
            "{media_type}"
        );
        assert_eq!(media.taken_at, None);
        assert_eq!(media.duration_secs, None);
    }
}

#[test]
fn a_bomb_header_is_reported_not_refused() {
    let bomb = png_claiming(100_000, 100_000);
    let media = describe_bytes(&bomb, "bomb.png", false);
    assert_eq!(media.media_type, "image/png");
    assert_eq!((media.width, media.height), (Some(100_000), Some(100_000)));
}

#[test]
fn a_truncated_jpeg_still_has_its_kind_type_and_size() {
    let bytes = encode(
        &DynamicImage::ImageRgb8(picture(640, 480)),
        ImageFormat::Jpeg,
    );
    let cut = &bytes[..bytes.len() / 2];
    let media = describe_bytes(cut, "cut.jpg", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Image, "image/jpeg")
    );
    assert_eq!((media.width, media.height), (Some(640), Some(480)));
    // Cut inside the header: the type is still known, the size is not.
    let media = describe_bytes(&bytes[..40], "cut.jpg", false);
    assert_eq!((media.kind, media.width), (MediaKind::Image, None));
}

#[test]
fn random_bytes_and_text_have_no_metadata() {
    let noise = Bytes::seeded(7).fill(100_000);
    let media = describe_bytes(&noise, "noise.jpg", true);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Other, "application/octet-stream")
    );
    assert_eq!(media.width, None);

    let text = "# Notes\n\nSome *markdown*, with ümlauts.\n".repeat(50);
    let media = describe_bytes(text.as_bytes(), "notes.md", true);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Document, "text/markdown")
    );
}

#[test]
fn documents_are_sniffed_from_their_magic() {
    let pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
    let media = describe_bytes(pdf, "scan.jpg", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Document, "application/pdf")
    );
}

/// Serves `good` bytes, then fails as a broken disk or connection would.
struct FailingReader {
    inner: Cursor<Vec<u8>>,
    good: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.position() >= self.good {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let room = (self.good - self.inner.position()) as usize;
        let len = buf.len().min(room);
        self.inner.read(&mut buf[..len])
    }
}

impl Seek for FailingReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_failing_read_is_an_io_error_worth_retrying() {
    let bytes = encode(&DynamicImage::ImageRgb8(picture(64, 64)), ImageFormat::Png);
    let head = bytes[..64].to_vec();
    let reader = FailingReader {
        inner: Cursor::new(bytes),
        good: 40,
    };
    let error =
        describe(reader, &head, "a.png", &DescribeOptions::default()).expect_err("the read failed");
    assert!(matches!(error, MediaError::Io(_)), "{error:?}");
    assert!(!error.is_permanent());
    assert!(error.to_string().contains("connection reset"), "{error}");
}
