//! Request headers that carry a file's metadata on `PUT /v1/assets/{sha256}`.
//! Names and paths may hold any Unicode (and, on Linux, bytes that are not
//! UTF-8 at all, which the client renders lossily), so their values are
//! percent-encoded UTF-8; header values stay plain visible ASCII.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Original file name (percent-encoded UTF-8), e.g. `holiday%20photo.jpg`.
pub const HEADER_NAME: &str = "x-asset-name";
/// Path relative to the watched root (percent-encoded UTF-8, `/` separated).
pub const HEADER_PATH: &str = "x-asset-path";
/// File modification time, RFC 3339 (e.g. `2026-11-24T21:00:00.123456789Z`).
pub const HEADER_MTIME: &str = "x-asset-mtime";
/// Stable identifier of the uploading client (`[A-Za-z0-9._-]`, 1..=64 chars).
pub const HEADER_CLIENT: &str = "x-asset-client";

/// Everything that is not unreserved is escaped, except `/` (path separator).
const ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b';')
    .add(b',')
    .add(b'=')
    .add(b'+')
    .add(b'&')
    .add(b':')
    .add(b'@')
    .add(b'$')
    .add(b'[')
    .add(b']')
    .add(b'\'')
    .add(b'!')
    .add(b'(')
    .add(b')')
    .add(b'*');

/// Percent-encode text for one of the metadata headers.
pub fn encode_header_text(text: &str) -> String {
    utf8_percent_encode(text, ENCODE).to_string()
}

/// Decode a metadata header value; `None` when it is not valid UTF-8 after decoding.
pub fn decode_header_text(value: &str) -> Option<String> {
    percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unicode_and_specials() {
        for s in [
            "plain.txt",
            "holiday photo.jpg",
            "dir/ünï cødé 100%.png",
            "a\nb;c=d\"e",
        ] {
            let enc = encode_header_text(s);
            assert!(enc.bytes().all(|b| b.is_ascii_graphic()), "{enc}");
            assert_eq!(decode_header_text(&enc).as_deref(), Some(s));
        }
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(decode_header_text("%ff%fe"), None);
    }
}
