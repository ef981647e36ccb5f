//! Audio and video: playing time (and a video's frame size) from the
//! container, never by decoding. lofty reads the audio formats, Mozilla's
//! mp4parse the ISO media files (MP4, MOV, M4A), and `matroska.rs` WebM/MKV.

use std::io::{BufReader, Read, Seek, SeekFrom, Take};

use asset_catalog_proto::{Media, MediaKind};
use lofty::config::ParseOptions;
use lofty::file::AudioFile;
use lofty::probe::Probe;
use mp4parse::TrackType;

/// Top-level boxes walked before giving up on finding `moov`.
const MAX_TOP_LEVEL_BOXES: usize = 4096;

/// Fill `duration_secs` (and kind and size where the container tells) for
/// the audio or video type `media.media_type`.
pub(crate) fn describe<R: Read + Seek>(reader: &mut R, media: &mut Media) {
    match media.media_type.as_str() {
        "video/mp4" | "video/quicktime" | "video/x-m4v" | "audio/mp4" => iso_media(reader, media),
        "video/webm" | "video/x-matroska" => {
            media.duration_secs = crate::matroska::duration(reader);
        }
        _ if media.kind == MediaKind::Audio => media.duration_secs = audio_duration(reader),
        _ => {}
    }
}

/// Whatever lofty reads: MP3, FLAC, Ogg Vorbis/Opus/Speex, WAV, AIFF, APE,
/// WavPack, Musepack, AAC (ADTS). Tags and cover art are skipped.
fn audio_duration<R: Read + Seek>(reader: &mut R) -> Option<f64> {
    reader.seek(SeekFrom::Start(0)).ok()?;
    let options = ParseOptions::new().read_tags(false).read_cover_art(false);
    let file = Probe::new(BufReader::new(reader))
        .options(options)
        .guess_file_type()
        .ok()?
        .read()
        .ok()?;
    seconds(file.properties().duration().as_secs_f64())
}

/// A real playing time, or nothing (zero means the container did not say).
fn seconds(secs: f64) -> Option<f64> {
    (secs.is_finite() && secs > 0.0).then_some(secs)
}

/// MP4, MOV and M4A: parse only the `moov` box (mp4parse would otherwise
/// read through the media data to the end of the file). An MP4 with sound
/// and no picture is audio.
fn iso_media<R: Read + Seek>(reader: &mut R, media: &mut Media) {
    let Some(moov) = find_moov(reader) else {
        return;
    };
    let Ok(context) = mp4parse::read_mp4(&mut moov.take_from(reader)) else {
        return;
    };
    let tracks = &context.tracks;
    let video = tracks.iter().find(|t| t.track_type == TrackType::Video);
    let has_audio = tracks.iter().any(|t| t.track_type == TrackType::Audio);
    if let Some(header) = video.and_then(|t| t.tkhd.as_ref()) {
        // tkhd holds 16.16 fixed point.
        let (width, height) = (header.width >> 16, header.height >> 16);
        if width > 0 && height > 0 {
            media.width = Some(width);
            media.height = Some(height);
        }
    }
    if video.is_none() && has_audio && media.kind == MediaKind::Video {
        media.kind = MediaKind::Audio;
        // QuickTime has no audio-only type of its own.
        if media.media_type != "video/quicktime" {
            "audio/mp4".clone_into(&mut media.media_type);
        }
    }
    media.duration_secs = iso_duration(&context);
}

/// The longest track by its header (in the movie's timescale), else by its
/// media header (in its own), else a fragmented file's declared length.
fn iso_duration(context: &mp4parse::MediaContext) -> Option<f64> {
    let known = |d: u64| d != 0 && d != u64::from(u32::MAX) && d != u64::MAX;
    let by_header = context.timescale.and_then(|scale| {
        let longest = context
            .tracks
            .iter()
            .filter_map(|t| t.tkhd.as_ref().map(|h| h.duration))
            .filter(|&d| known(d))
            .max()?;
        ratio(longest, scale.0)
    });
    let by_media = || {
        context
            .tracks
            .iter()
            .filter_map(|t| match (t.duration, t.timescale) {
                (Some(d), Some(s)) if known(d.0) => ratio(d.0, s.0),
                _ => None,
            })
            .reduce(f64::max)
    };
    let by_fragments = || {
        let declared = context.mvex.as_ref()?.fragment_duration?;
        ratio(declared.0, context.timescale?.0)
    };
    by_header.or_else(by_media).or_else(by_fragments)
}

fn ratio(units: u64, per_second: u64) -> Option<f64> {
    if per_second == 0 {
        return None;
    }
    // u64 to f64 loses precision only past 2^53 units: centuries of media.
    seconds(units as f64 / per_second as f64)
}

/// Where the `moov` box starts and how long it is.
struct BoxSpan {
    start: u64,
    len: u64,
}

impl BoxSpan {
    fn take_from<'r, R: Read + Seek>(&self, reader: &'r mut R) -> Take<&'r mut R> {
        // A failed seek leaves the reader elsewhere; mp4parse then fails.
        let _ = reader.seek(SeekFrom::Start(self.start));
        reader.take(self.len)
    }
}

/// Walk the top-level boxes (size, type, optional 64-bit size) by seeking.
fn find_moov<R: Read + Seek>(reader: &mut R) -> Option<BoxSpan> {
    let end = reader.seek(SeekFrom::End(0)).ok()?;
    let mut at = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if at.checked_add(8)? > end {
            return None;
        }
        reader.seek(SeekFrom::Start(at)).ok()?;
        let mut header = [0u8; 8];
        reader.read_exact(&mut header).ok()?;
        let [s0, s1, s2, s3, t0, t1, t2, t3] = header;
        let len = match u32::from_be_bytes([s0, s1, s2, s3]) {
            0 => end - at,
            1 => {
                let mut large = [0u8; 8];
                reader.read_exact(&mut large).ok()?;
                u64::from_be_bytes(large)
            }
            n => u64::from(n),
        };
        if len < 8 {
            return None;
        }
        if [t0, t1, t2, t3] == *b"moov" {
            return Some(BoxSpan { start: at, len });
        }
        at = at.checked_add(len)?;
    }
    None
}
