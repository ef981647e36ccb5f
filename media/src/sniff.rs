//! What an object is, from its first bytes alone. The uploader's declared
//! type is never consulted; the file name only tells apart kinds of text,
//! which have no magic numbers (`.md` from `.csv` from `.txt`).

use asset_catalog_proto::MediaKind;

/// How many bytes of an object's start [`sniff`] looks at. Enough for every
/// magic number `infer` knows, for the first entries of a ZIP (which tell an
/// office document from an archive) and for an SVG root element behind an
/// XML prolog and a licence comment.
pub const SNIFF_BYTES: usize = 8192;

/// What [`sniff`] answers for bytes it does not recognise.
pub const UNKNOWN_TYPE: &str = "application/octet-stream";

/// Kind and media type from the first bytes; `name` (file name) only breaks
/// ties for text-like content. Never trusts the uploader's declared type.
pub fn sniff(head: &[u8], name: &str) -> (MediaKind, String) {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    if let Some(found) = infer::get(head) {
        let media_type = normalise(found.mime_type());
        match found.matcher_type() {
            // infer names XML and HTML by their first tag; an SVG is an image.
            infer::MatcherType::Text if is_svg(head) => {}
            infer::MatcherType::Text => return (MediaKind::Document, media_type.to_owned()),
            // Old Office files are OLE containers; which kind is in the
            // container's directory, usually past the head, so the name says
            // (infer without its `cfb` reader calls every container a .doc).
            _ if is_ole(media_type) => return ole_by_name(name),
            matcher => return (kind_of(matcher, media_type), media_type.to_owned()),
        }
    }
    if looks_like_text(head) {
        if is_svg(head) {
            return (MediaKind::Image, "image/svg+xml".to_owned());
        }
        return (MediaKind::Document, text_type_by_name(name).to_owned());
    }
    (MediaKind::Other, UNKNOWN_TYPE.to_owned())
}

fn kind_of(matcher: infer::MatcherType, media_type: &str) -> MediaKind {
    use infer::MatcherType as M;
    match matcher {
        M::Image if media_type == "image/vnd.djvu" => MediaKind::Document,
        M::Image if media_type == "image/vnd.dwg" => MediaKind::Other,
        M::Image => MediaKind::Image,
        M::Video => MediaKind::Video,
        M::Audio => MediaKind::Audio,
        M::Book | M::Doc | M::Text => MediaKind::Document,
        // infer files PDF, RTF and PostScript under archives.
        M::Archive if is_document_type(media_type) => MediaKind::Document,
        M::App | M::Archive | M::Font | M::Custom => MediaKind::Other,
    }
}

fn is_ole(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/msword" | "application/x-ole-storage"
    )
}

fn is_document_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/pdf" | "application/rtf" | "application/postscript"
    )
}

/// The registered names where infer reports an `x-` or a vendor alias.
fn normalise(media_type: &'static str) -> &'static str {
    match media_type {
        "audio/x-flac" => "audio/flac",
        "audio/x-wav" => "audio/wav",
        "audio/x-aiff" => "audio/aiff",
        "audio/m4a" => "audio/mp4",
        "text/xml" => "application/xml",
        other => other,
    }
}

fn ole_by_name(name: &str) -> (MediaKind, String) {
    let media_type = match extension(name).as_deref() {
        Some("doc") => "application/msword",
        Some("xls") => "application/vnd.ms-excel",
        Some("ppt") => "application/vnd.ms-powerpoint",
        Some("msi") => "application/x-msi",
        _ => return (MediaKind::Other, "application/x-ole-storage".to_owned()),
    };
    let kind = if media_type == "application/x-msi" {
        MediaKind::Other
    } else {
        MediaKind::Document
    };
    (kind, media_type.to_owned())
}

fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

/// A text media type for the name's extension, or `text/plain`: only types
/// a text file can honestly be (a `.png` that is text stays text/plain).
fn text_type_by_name(name: &str) -> &'static str {
    let Some(guess) = mime_guess::from_path(name).first_raw() else {
        return "text/plain";
    };
    let textual = guess.starts_with("text/")
        || matches!(
            guess,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-sh"
                | "application/x-yaml"
                | "application/toml"
                | "application/sql"
                | "application/x-tex"
        );
    if textual { guess } else { "text/plain" }
}

/// Text in any ASCII-compatible encoding (UTF-8, Latin-1, Windows-1252),
/// or UTF-16 with a byte-order mark: no NULs and no control characters other
/// than the ones text files carry (tab, line breaks, form feed, escape).
/// Binary formats are full of those within a few bytes.
fn looks_like_text(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    !head.is_empty()
        && head
            .iter()
            .all(|&b| b >= 0x20 && b != 0x7F || matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
}

/// An `<svg` root element in the head (after any prolog, doctype and
/// comments); an XHTML page with inline SVG does not count.
fn is_svg(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lower = text.to_ascii_lowercase();
    match (lower.find("<svg"), lower.find("<html")) {
        (Some(svg), Some(html)) => svg < html,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_told_apart_by_name_only() {
        let csv = b"name,size\nphoto.jpg,120\n";
        assert_eq!(
            sniff(csv, "a.csv"),
            (MediaKind::Document, "text/csv".into())
        );
        assert_eq!(sniff(csv, "a.md").1, "text/markdown");
        assert_eq!(sniff(csv, "a.txt").1, "text/plain");
        assert_eq!(sniff(csv, "README").1, "text/plain");
        assert_eq!(sniff(csv, "a.json").1, "application/json");
        // A name cannot make text into an image.
        assert_eq!(sniff(csv, "a.png").1, "text/plain");
        assert_eq!(sniff(csv, "a.exe").1, "text/plain");
    }

    #[test]
    fn a_cut_multibyte_character_is_still_text() {
        let mut text = format!("x{}", "€".repeat(3000)).into_bytes();
        text.truncate(SNIFF_BYTES);
        assert!(std::str::from_utf8(&text).is_err());
        assert_eq!(sniff(&text, "notes.txt").1, "text/plain");
    }

    #[test]
    fn latin1_text_is_text() {
        let latin1 = b"caf\xe9 cr\xe8me, na\xefve r\xe9sum\xe9\r\n";
        assert_eq!(
            sniff(latin1, "menu.txt"),
            (MediaKind::Document, "text/plain".into())
        );
    }

    #[test]
    fn binary_is_other() {
        let binary = [0u8, 1, 2, 3, 0, 0, 0xFF, 0x10];
        assert_eq!(
            sniff(&binary, "a.txt"),
            (MediaKind::Other, UNKNOWN_TYPE.into())
        );
        assert_eq!(sniff(b"", "a.txt"), (MediaKind::Other, UNKNOWN_TYPE.into()));
    }

    #[test]
    fn magic_numbers_beat_names() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png, "a.txt"), (MediaKind::Image, "image/png".into()));
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
        assert_eq!(
            sniff(pdf, "a.jpg"),
            (MediaKind::Document, "application/pdf".into())
        );
        let wav = b"RIFF\x24\0\0\0WAVEfmt ";
        assert_eq!(sniff(wav, "x"), (MediaKind::Audio, "audio/wav".into()));
        let flac = b"fLaC\0\0\0\x22";
        assert_eq!(sniff(flac, "x"), (MediaKind::Audio, "audio/flac".into()));
    }

    #[test]
    fn svg_is_an_image_and_xml_a_document() {
        let svg = b"<?xml version=\"1.0\"?>\n<!-- licence -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(
            sniff(svg, "x.txt"),
            (MediaKind::Image, "image/svg+xml".into())
        );
        let bare = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\"/>";
        assert_eq!(sniff(bare, "x").1, "image/svg+xml");
        let xml = b"<?xml version=\"1.0\"?><feed/>";
        assert_eq!(
            sniff(xml, "x"),
            (MediaKind::Document, "application/xml".into())
        );
        let html = b"<!DOCTYPE html><html><body><svg/></body></html>";
        assert_eq!(sniff(html, "x"), (MediaKind::Document, "text/html".into()));
    }

    #[test]
    fn old_office_files_are_named_by_extension() {
        let ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0\0\0\0\0";
        assert_eq!(
            sniff(ole, "budget.XLS"),
            (MediaKind::Document, "application/vnd.ms-excel".into())
        );
        assert_eq!(sniff(ole, "x.bin").0, MediaKind::Other);
    }
}
