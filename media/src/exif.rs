//! EXIF: capture time, camera, orientation and (only when asked) position,
//! read with kamadak-exif. Anything missing or malformed is simply absent.

use std::io::{BufRead, Seek};

use asset_catalog_proto::{Gps, Media, misleads_when_shown};
use exif::{DateTime, Exif, In, Reader, Tag, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Longest make or model kept; real ones are under 40 characters.
const MAX_TEXT: usize = 128;

/// EXIF from a JPEG, PNG, WebP or HEIF container.
pub(crate) fn from_container<R: BufRead + Seek>(reader: &mut R) -> Option<Exif> {
    settle(
        Reader::new()
            .continue_on_error(true)
            .read_from_container(reader),
    )
}

/// EXIF from the start of a TIFF file (which *is* EXIF's structure).
/// kamadak-exif would read a whole TIFF into memory, so the caller hands over
/// a bounded prefix; fields whose values lie past it are skipped.
pub(crate) fn from_tiff(prefix: Vec<u8>) -> Option<Exif> {
    settle(Reader::new().continue_on_error(true).read_raw(prefix))
}

/// Keep what was read even when some fields were broken.
fn settle(result: Result<Exif, exif::Error>) -> Option<Exif> {
    match result {
        Ok(exif) => Some(exif),
        Err(exif::Error::PartialResult(partial)) => Some(partial.into_inner().0),
        Err(_) => None,
    }
}

/// Copy what `Media` holds from `exif` into `media`.
pub(crate) fn apply(exif: &Exif, keep_gps: bool, media: &mut Media) {
    media.taken_at = taken_at(exif);
    media.camera_make = text(exif, Tag::Make);
    media.camera_model = text(exif, Tag::Model);
    media.orientation = orientation(exif);
    media.gps = if keep_gps { gps(exif) } else { None };
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

/// DateTimeOriginal with its sub-seconds, in the offset OffsetTimeOriginal
/// names, else taken as UTC (cameras before EXIF 2.31 record no offset).
fn taken_at(exif: &Exif) -> Option<OffsetDateTime> {
    let mut stamp = DateTime::from_ascii(ascii(exif, Tag::DateTimeOriginal)?).ok()?;
    if let Some(subsec) = ascii(exif, Tag::SubSecTimeOriginal) {
        // A malformed sub-second field leaves whole seconds.
        if stamp.parse_subsec(subsec).is_err() {
            stamp.nanosecond = None;
        }
    }
    if let Some(offset) = ascii(exif, Tag::OffsetTimeOriginal) {
        if stamp.parse_offset(offset).is_err() {
            stamp.offset = None;
        }
    }
    let date = Date::from_calendar_date(
        i32::from(stamp.year),
        Month::try_from(stamp.month).ok()?,
        stamp.day,
    )
    .ok()?;
    let time = Time::from_hms_nano(
        stamp.hour,
        stamp.minute,
        stamp.second,
        stamp.nanosecond.unwrap_or(0),
    )
    .ok()?;
    let offset = match stamp.offset {
        Some(minutes) => UtcOffset::from_whole_seconds(i32::from(minutes) * 60).ok()?,
        None => UtcOffset::UTC,
    };
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// Printable text without trailing padding; `None` when nothing is left.
fn text(exif: &Exif, tag: Tag) -> Option<String> {
    let raw = ascii(exif, tag)?;
    let cleaned: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|&c| !misleads_when_shown(c))
        .take(MAX_TEXT)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn orientation(exif: &Exif) -> Option<u16> {
    let value = exif
        .get_field(Tag::Orientation, In::PRIMARY)?
        .value
        .get_uint(0)?;
    u16::try_from(value).ok().filter(|o| (1..=8).contains(o))
}

fn gps(exif: &Exif) -> Option<Gps> {
    let latitude = coordinate(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')?;
    let longitude = coordinate(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W')?;
    ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude)).then_some(Gps {
        latitude,
        longitude,
    })
}

/// Degrees, minutes and seconds as decimal degrees, negative for the
/// reference letter `negative` (S or W).
fn coordinate(exif: &Exif, tag: Tag, reference: Tag, negative: u8) -> Option<f64> {
    let Value::Rational(parts) = &exif.get_field(tag, In::PRIMARY)?.value else {
        return None;
    };
    let mut degrees = 0.0;
    for (part, scale) in parts.iter().zip([1.0, 60.0, 3600.0]) {
        if part.denom == 0 {
            return None;
        }
        degrees += part.to_f64() / scale;
    }
    if parts.is_empty() || !degrees.is_finite() {
        return None;
    }
    let sign = match ascii(exif, reference)?.first() {
        Some(&letter) if letter.eq_ignore_ascii_case(&negative) => -1.0,
        Some(_) => 1.0,
        None => return None,
    };
    Some(sign * degrees)
}
