//! `describe`: everything `Media` holds, from the object's bytes. Odd files
//! give less metadata, never an error; only a failing read is an error.

use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};

use asset_catalog_proto::{Media, MediaKind};
use image::ImageFormat;

use crate::{Limits, MediaError, av, exif, raster, sniff};

/// How much of an image's start is read for its header and EXIF. JPEG's
/// header and EXIF sit before the pixels (after at most a few MiB of
/// extended XMP, as phones write depth maps); a TIFF's directory is near its
/// start in practice. Bounded because both readers would otherwise take the
/// whole file into memory.
const IMAGE_HEAD_BYTES: u64 = 16 << 20;

/// What [`describe`] reads beyond the sniffed type.
#[derive(Debug, Clone, Copy, Default)]
pub struct DescribeOptions {
    /// Keep the EXIF GPS position (off by default: a photo's location is
    /// often more than its owner meant to share).
    pub keep_gps: bool,
    pub limits: Limits,
}

/// Everything `Media` can hold, from a seekable reader over the whole object.
///
/// `head` is the object's first bytes (at least [`crate::SNIFF_BYTES`] when
/// the object has them) and `name` its file name, both for [`crate::sniff`].
/// Images: width and height as the header states them (a header over the
/// limits is reported, not refused; nothing is decoded), as stored, before
/// orientation; EXIF capture time, camera, orientation and, with
/// `keep_gps`, position. Audio and video: playing time; video also its frame
/// size. Metadata that is missing or unreadable is absent: this fails only
/// when reading the object fails.
pub fn describe<R: Read + Seek>(
    reader: R,
    head: &[u8],
    name: &str,
    options: &DescribeOptions,
) -> Result<Media, MediaError> {
    let (kind, media_type) = sniff::sniff(head, name);
    let mut media = Media {
        kind,
        media_type,
        ..Media::default()
    };
    let mut reader = Watched::new(reader);
    match media.kind {
        MediaKind::Image => image_metadata(&mut reader, options, &mut media),
        MediaKind::Audio | MediaKind::Video => av::describe(&mut reader, &mut media),
        MediaKind::Document | MediaKind::Other => {}
    }
    match reader.failure {
        Some(e) => Err(MediaError::Io(e)),
        None => Ok(media),
    }
}

fn image_metadata<R: Read + Seek>(reader: &mut R, options: &DescribeOptions, media: &mut Media) {
    let format = raster::format_of(&media.media_type);
    let found = match media.media_type.as_str() {
        // Both read from a bounded head, held in memory.
        "image/jpeg" | "image/tiff" | "image/x-canon-cr2" => {
            let Some(head) = read_head(reader) else {
                return;
            };
            if let Some(format) = format {
                set_size(
                    media,
                    raster::dimensions(Cursor::new(&head[..]), format, &options.limits),
                );
            }
            if format == Some(ImageFormat::Jpeg) {
                exif::from_container(&mut Cursor::new(&head[..]))
            } else {
                exif::from_tiff(head)
            }
        }
        // The others are read where they are: their readers skip by seeking.
        _ => {
            if let Some(format) = format {
                let size = rewind(reader).and_then(|()| {
                    raster::dimensions(BufReader::new(&mut *reader), format, &options.limits)
                });
                set_size(media, size);
            }
            match rewind(reader) {
                Some(()) => exif::from_container(&mut BufReader::new(&mut *reader)),
                None => None,
            }
        }
    };
    if let Some(found) = found {
        exif::apply(&found, options.keep_gps, media);
    }
}

fn set_size(media: &mut Media, size: Option<(u32, u32)>) {
    if let Some((width, height)) = size.filter(|&(w, h)| w > 0 && h > 0) {
        media.width = Some(width);
        media.height = Some(height);
    }
}

fn rewind<R: Seek>(reader: &mut R) -> Option<()> {
    reader.seek(SeekFrom::Start(0)).ok().map(drop)
}

fn read_head<R: Read + Seek>(reader: &mut R) -> Option<Vec<u8>> {
    rewind(reader)?;
    let mut head = Vec::new();
    reader.take(IMAGE_HEAD_BYTES).read_to_end(&mut head).ok()?;
    Some(head)
}

/// A reader that remembers the first error the object itself returned, so
/// that parsers may give up on a failed read without it being mistaken for
/// an odd file. A short file is no error here: parsers see it as an early
/// end, the object reader reports nothing.
struct Watched<R> {
    inner: R,
    failure: Option<io::Error>,
}

impl<R> Watched<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            failure: None,
        }
    }

    fn note(&mut self, error: &io::Error) {
        if self.failure.is_none() {
            self.failure = Some(io::Error::new(error.kind(), error.to_string()));
        }
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        match &result {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => self.note(e),
            _ => {}
        }
        result
    }
}

impl<R: Seek> Seek for Watched<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let result = self.inner.seek(pos);
        // Seeking before the start is a parser following a bad offset.
        match &result {
            Err(e) if e.kind() != io::ErrorKind::InvalidInput => self.note(e),
            _ => {}
        }
        result
    }
}
