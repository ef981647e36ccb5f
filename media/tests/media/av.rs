//! Playing time from audio and video containers made by hand here (no
//! encoder tools needed): WAV, MP3, FLAC, MP4 with and without a picture,
//! WebM.

use asset_catalog_media::MediaKind;

use crate::common::{describe_bytes, mp4_box};

fn close(actual: Option<f64>, expected: f64, tolerance: f64) {
    let actual = actual.unwrap_or(f64::NAN);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} s, expected {expected} s"
    );
}

/// PCM WAV, 16-bit mono at `rate` Hz, `seconds` long.
fn wav(rate: u32, seconds: f64) -> Vec<u8> {
    let data_len = (f64::from(rate) * seconds) as u32 * 2;
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    // A 440 Hz square wave, so the data is not all silence.
    wav.extend((0..data_len / 2).flat_map(|i| {
        let high = (i * 440 * 2 / rate) % 2 == 0;
        (if high { 8000i16 } else { -8000 }).to_le_bytes()
    }));
    wav
}

#[test]
fn wav_duration() {
    let media = describe_bytes(&wav(8000, 2.5), "take1.wav", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Audio, "audio/wav")
    );
    close(media.duration_secs, 2.5, 0.001);
    assert_eq!(media.width, None);
}

#[test]
fn mp3_duration() {
    // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames of
    // 1152 samples each. 100 frames are 2.612 s.
    let mut mp3 = Vec::new();
    for _ in 0..100 {
        mp3.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        mp3.extend(std::iter::repeat_n(0u8, 413));
    }
    let media = describe_bytes(&mp3, "song.mp3", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Audio, "audio/mpeg")
    );
    close(media.duration_secs, 2.612, 0.05);
}

#[test]
fn flac_duration() {
    // STREAMINFO only: 44.1 kHz, stereo, 16 bits, 132300 samples = 3 s.
    let mut info = Vec::new();
    info.extend_from_slice(&4096u16.to_be_bytes()); // min block size
    info.extend_from_slice(&4096u16.to_be_bytes()); // max block size
    info.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // frame sizes unknown
    let rate: u64 = 44_100;
    let packed = (rate << 44) | (1 << 41) | (15 << 36) | 132_300;
    info.extend_from_slice(&packed.to_be_bytes());
    info.extend_from_slice(&[0; 16]); // MD5 unknown
    let mut flac = b"fLaC".to_vec();
    flac.push(0x80); // last block, STREAMINFO
    flac.extend_from_slice(&(info.len() as u32).to_be_bytes()[1..]);
    flac.extend(info);
    let media = describe_bytes(&flac, "track.flac", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Audio, "audio/flac")
    );
    close(media.duration_secs, 3.0, 0.001);
}

fn full_box(kind: &[u8; 4], version_flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut body = version_flags.to_be_bytes().to_vec();
    body.extend_from_slice(payload);
    mp4_box(kind, &body)
}

const IDENTITY: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// One track: `handler` is `vide` or `soun`; its media runs `seconds`.
fn trak(id: u32, handler: &[u8; 4], seconds: u32, movie_scale: u32, size: (u32, u32)) -> Vec<u8> {
    let mut tkhd = words(&[0, 0, id, 0, seconds * movie_scale, 0, 0]);
    tkhd.extend_from_slice(&[0, 0, 0, 0, 0x01, 0x00, 0, 0]); // layer, group, volume
    tkhd.extend(words(&IDENTITY));
    tkhd.extend(words(&[size.0 << 16, size.1 << 16]));
    let media_scale = 90_000;
    let mut mdhd = words(&[0, 0, media_scale, seconds * media_scale]);
    mdhd.extend_from_slice(&[0x55, 0xC4, 0, 0]); // language "und"
    let mut hdlr = words(&[0]);
    hdlr.extend_from_slice(handler);
    hdlr.extend(words(&[0, 0, 0]));
    hdlr.push(0);
    let header = if handler == b"vide" {
        full_box(b"vmhd", 1, &[0; 8])
    } else {
        full_box(b"smhd", 0, &[0; 4])
    };
    let dref = full_box(
        b"dref",
        0,
        &[&words(&[1])[..], &full_box(b"url ", 1, &[])].concat(),
    );
    let stbl = [
        full_box(b"stsd", 0, &words(&[0])),
        full_box(b"stts", 0, &words(&[0])),
        full_box(b"stsc", 0, &words(&[0])),
        full_box(b"stsz", 0, &words(&[0, 0])),
        full_box(b"stco", 0, &words(&[0])),
    ]
    .concat();
    let minf = [header, mp4_box(b"dinf", &dref), mp4_box(b"stbl", &stbl)].concat();
    let mdia = [
        full_box(b"mdhd", 0, &mdhd),
        full_box(b"hdlr", 0, &hdlr),
        mp4_box(b"minf", &minf),
    ]
    .concat();
    mp4_box(
        b"trak",
        &[full_box(b"tkhd", 3, &tkhd), mp4_box(b"mdia", &mdia)].concat(),
    )
}

/// ftyp, a large `mdat` (64-bit size), then `moov`, as cameras write them.
fn mp4(traks: &[Vec<u8>], movie_scale: u32, seconds: u32) -> Vec<u8> {
    let mut mvhd = words(&[0, 0, movie_scale, seconds * movie_scale, 0x0001_0000]);
    mvhd.extend_from_slice(&[0x01, 0x00, 0, 0]);
    mvhd.extend(words(&[0, 0]));
    mvhd.extend(words(&IDENTITY));
    mvhd.extend(words(&[0; 6]));
    mvhd.extend(words(&[traks.len() as u32 + 1]));
    let mut moov = full_box(b"mvhd", 0, &mvhd);
    for trak in traks {
        moov.extend_from_slice(trak);
    }
    let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
    let media_data = 300_000u64;
    file.extend(words(&[1]));
    file.extend_from_slice(b"mdat");
    file.extend((16 + media_data).to_be_bytes());
    file.extend(std::iter::repeat_n(0u8, media_data as usize));
    file.extend(mp4_box(b"moov", &moov));
    file
}

#[test]
fn mp4_video_duration_and_size() {
    let video = mp4(
        &[
            trak(1, b"vide", 7, 600, (1920, 1080)),
            trak(2, b"soun", 7, 600, (0, 0)),
        ],
        600,
        7,
    );
    let media = describe_bytes(&video, "clip.mp4", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Video, "video/mp4")
    );
    close(media.duration_secs, 7.0, 0.001);
    assert_eq!((media.width, media.height), (Some(1920), Some(1080)));

    // A silent film.
    let silent = mp4(&[trak(1, b"vide", 12, 1000, (640, 480))], 1000, 12);
    let media = describe_bytes(&silent, "clip.mp4", false);
    assert_eq!(media.kind, MediaKind::Video);
    close(media.duration_secs, 12.0, 0.001);
}

#[test]
fn mp4_with_only_sound_is_audio() {
    let audio = mp4(&[trak(1, b"soun", 95, 44_100, (0, 0))], 44_100, 95);
    let media = describe_bytes(&audio, "podcast.mp4", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Audio, "audio/mp4")
    );
    close(media.duration_secs, 95.0, 0.001);
    assert_eq!(media.width, None);
}

/// An EBML element with a one-byte size.
fn ebml(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.push(0x80 | body.len() as u8);
    out.extend_from_slice(body);
    out
}

#[test]
fn webm_duration() {
    let header = ebml(
        &[0x1A, 0x45, 0xDF, 0xA3],
        &[ebml(&[0x42, 0x82], b"webm"), ebml(&[0x42, 0x87], &[4])].concat(),
    );
    let info = ebml(
        &[0x15, 0x49, 0xA9, 0x66],
        &[
            ebml(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]), // 1 ms units
            ebml(&[0x44, 0x89], &12_345.0f64.to_be_bytes()),
        ]
        .concat(),
    );
    // A Void element with a two-byte size, to be skipped (and to make the
    // file as long as infer wants to see before it says WebM).
    let mut void = vec![0xEC, 0x41, 0x2C];
    void.extend([0u8; 300]);
    let mut webm = header;
    webm.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    webm.extend(void);
    webm.extend(info);
    let media = describe_bytes(&webm, "talk.webm", false);
    assert_eq!(
        (media.kind, media.media_type.as_str()),
        (MediaKind::Video, "video/webm")
    );
    close(media.duration_secs, 12.345, 0.0001);
}
