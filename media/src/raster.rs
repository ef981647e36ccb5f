//! Raster images through the `image` crate: which types it decodes here,
//! headers without pixels, and bounded decoding that refuses truncated data.

use std::io::{BufRead, Cursor, Seek};

use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, metadata::Orientation,
};

use crate::{Limits, MediaError};

/// The decoder for a sniffed media type, among the formats built in.
pub(crate) fn format_of(media_type: &str) -> Option<ImageFormat> {
    Some(match media_type {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::WebP,
        "image/bmp" => ImageFormat::Bmp,
        "image/tiff" => ImageFormat::Tiff,
        _ => return None,
    })
}

/// Width and height as the header states them, whatever the limits say:
/// only the decoder's side allocations are bounded (by `max_alloc`).
pub(crate) fn dimensions<R: BufRead + Seek>(
    reader: R,
    format: ImageFormat,
    limits: &Limits,
) -> Option<(u32, u32)> {
    let mut reader = ImageReader::with_format(reader, format);
    reader.limits(header_limits(limits));
    reader.into_dimensions().ok()
}

/// No bounds on the size a header may claim, only on what is allocated.
fn header_limits(limits: &Limits) -> image::Limits {
    let mut header = image::Limits::no_limits();
    header.max_alloc = Some(limits.max_alloc);
    header
}

/// Decode a whole image within `limits`, with the orientation its own
/// metadata states (JPEG, WebP and TIFF carry one).
pub(crate) fn decode(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<(DynamicImage, Orientation), MediaError> {
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(MediaError::Corrupt(
            "the JPEG data stops before its end-of-image marker (the file is truncated)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(header_limits(limits));
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| from_image(e, None, limits))?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height, decoder.total_bytes())?;
    let size = Some((width, height));
    decoder
        .set_limits(limits.for_decoder())
        .map_err(|e| from_image(e, size, limits))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(|e| from_image(e, size, limits))?;
    Ok((image, orientation))
}

/// Whether a JPEG's image data reaches an end-of-image (EOI) marker.
///
/// The `image` crate runs zune-jpeg in its lenient mode: when the data ends
/// early it fills the missing rows with grey and reports success, as browsers
/// do. A thumbnail is stored for good, so a half-grey one is worse than none.
/// zune-jpeg's strict mode would also refuse the harmless oddities real
/// cameras write, so instead this walks the marker segments to the first
/// start-of-scan (SOS) and requires FF D9 somewhere after it: in
/// entropy-coded data an FF byte is always followed by 00 (stuffing) or a
/// restart marker, so FF D9 there can only be the end of the image. An
/// embedded EXIF preview (inside APP1, before the SOS) does not count, and
/// data appended after the EOI (motion photos, MPF) does no harm.
pub(crate) fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut at = 2; // past SOI
    loop {
        // Markers may be preceded by any number of FF fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        match (bytes.get(at), bytes.get(at + 1)) {
            (Some(0xFF), Some(0xDA)) => break,
            // EOI before any scan: no image data at all.
            (Some(0xFF), Some(0xD9)) => return false,
            // Stand-alone markers carry no length.
            (Some(0xFF), Some(0x01 | 0xD0..=0xD7)) => at += 2,
            (Some(0xFF), Some(_)) => {
                let Some(length) = bytes.get(at + 2..at + 4) else {
                    return false;
                };
                at += 2 + usize::from(u16::from_be_bytes([length[0], length[1]]));
            }
            _ => return false,
        }
    }
    bytes[at..].windows(2).any(|pair| pair == [0xFF, 0xD9])
}

/// One sentence for each way `image` fails.
fn from_image(error: ImageError, size: Option<(u32, u32)>, limits: &Limits) -> MediaError {
    match error {
        ImageError::Limits(_) => match size {
            Some((width, height)) => MediaError::TooLarge {
                width,
                height,
                limit: crate::error::Exceeded::Memory(limits.max_alloc),
            },
            None => MediaError::Unsupported(format!("the decoder refused the image: {error}")),
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::Corrupt("the image data stops early (the file is truncated)".into())
        }
        ImageError::Decoding(_) | ImageError::Parameter(_) | ImageError::IoError(_) => {
            MediaError::Corrupt(error.to_string())
        }
        ImageError::Unsupported(_) | ImageError::Encoding(_) => {
            MediaError::Unsupported(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_completeness_follows_the_markers() {
        // SOI, an APP1 holding a whole preview (FF D8 .. FF D9), SOS, data, EOI.
        let mut jpeg = vec![
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xD8, 0xFF, 0xD9, 0, 0,
        ];
        jpeg.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34]);
        assert!(
            !jpeg_is_complete(&jpeg),
            "the preview's EOI is not the image's"
        );
        jpeg.extend([0xFF, 0xD9]);
        assert!(jpeg_is_complete(&jpeg));
        jpeg.extend(b"appended video");
        assert!(jpeg_is_complete(&jpeg));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xD9]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8]));
        assert!(!jpeg_is_complete(&[]));
    }
}
