//! WebM and Matroska playing time: Segment → Info → Duration x
//! TimestampScale. A few lines of EBML instead of a crate: the Matroska
//! readers on crates.io assert on malformed files and allocate whatever size
//! an element claims, and this needs two numbers from the first kilobytes.

use std::io::{Read, Seek, SeekFrom};

const EBML_HEADER: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;

/// Segment children looked at before giving up (Info comes first in
/// practice, after SeekHead and perhaps Void).
const MAX_CHILDREN: usize = 64;
/// Larger Info elements are not read: a real one is under 1 KiB.
const MAX_INFO_BYTES: u64 = 64 * 1024;
/// Nanoseconds per timestamp unit when the file does not say.
const DEFAULT_SCALE: u64 = 1_000_000;

pub(crate) fn duration<R: Read + Seek>(reader: &mut R) -> Option<f64> {
    reader.seek(SeekFrom::Start(0)).ok()?;
    let (id, size) = element(reader)?;
    if id != EBML_HEADER {
        return None;
    }
    reader
        .seek(SeekFrom::Current(i64::try_from(size?).ok()?))
        .ok()?;
    let (id, _) = element(reader)?;
    if id != SEGMENT {
        return None;
    }
    for _ in 0..MAX_CHILDREN {
        let (id, size) = element(reader)?;
        match id {
            INFO => {
                let size = size.filter(|&s| s <= MAX_INFO_BYTES)?;
                let mut body = Vec::new();
                reader.take(size).read_to_end(&mut body).ok()?;
                return info_duration(&body);
            }
            // Media data starts: there is no Info before it.
            CLUSTER => return None,
            _ => {
                reader
                    .seek(SeekFrom::Current(i64::try_from(size?).ok()?))
                    .ok()?;
            }
        }
    }
    None
}

/// Seconds from the children of an Info element.
fn info_duration(mut body: &[u8]) -> Option<f64> {
    let mut scale = DEFAULT_SCALE;
    let mut duration = None;
    while !body.is_empty() {
        let (id, size) = element(&mut body)?;
        let size = usize::try_from(size?).ok()?;
        let value = body.get(..size)?;
        body = &body[size..];
        match (id, value.len()) {
            (TIMESTAMP_SCALE, 1..=8) => {
                scale = value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            }
            (DURATION, 4) => {
                duration = Some(f64::from(f32::from_be_bytes(value.try_into().ok()?)));
            }
            (DURATION, 8) => duration = Some(f64::from_be_bytes(value.try_into().ok()?)),
            _ => {}
        }
    }
    // Scale is in nanoseconds (u64 to f64: exact below 2^53).
    let secs = duration? * scale as f64 / 1e9;
    (secs.is_finite() && secs > 0.0).then_some(secs)
}

/// An element's ID (marker bits kept, as the spec writes IDs) and data size
/// (`None` for "unknown", all value bits set).
fn element<R: Read>(reader: &mut R) -> Option<(u32, Option<u64>)> {
    let (id, id_len) = vint(reader, 4)?;
    let id = u32::try_from(id | (1 << (7 * id_len))).ok()?;
    let (size, size_len) = vint(reader, 8)?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Some((id, (!unknown).then_some(size)))
}

/// A variable-length integer of at most `max_len` bytes, without its length
/// marker, and its length.
fn vint<R: Read>(reader: &mut R, max_len: u32) -> Option<(u64, u32)> {
    let mut first = [0u8; 1];
    reader.read_exact(&mut first).ok()?;
    let len = first[0].leading_zeros() + 1;
    if len > max_len {
        return None;
    }
    let mut value = u64::from(first[0]) & (0xFF >> len);
    for _ in 1..len {
        reader.read_exact(&mut first).ok()?;
        value = (value << 8) | u64::from(first[0]);
    }
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vints_read_as_the_spec_shows() {
        assert_eq!(vint(&mut &[0x81u8][..], 8), Some((1, 1)));
        assert_eq!(vint(&mut &[0x40u8, 0x02][..], 8), Some((2, 2)));
        assert_eq!(vint(&mut &[0x00u8][..], 8), None);
        let (id, size) = element(&mut &[0x1A, 0x45, 0xDF, 0xA3, 0x84][..]).unwrap_or((0, None));
        assert_eq!((id, size), (EBML_HEADER, Some(4)));
        assert_eq!(
            element(&mut &[0x18, 0x53, 0x80, 0x67, 0xFF][..]),
            Some((SEGMENT, None))
        );
    }
}
