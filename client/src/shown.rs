//! Text from outside the watcher — file names, paths, the server's messages —
//! made safe to show in a log line or on a terminal. Control characters (C0,
//! DEL, C1) and the bidirectional formatting characters that make a name read
//! as something it is not (U+202A–U+202E, U+2066–U+2069, and the marks U+061C,
//! U+200E, U+200F) are written as escapes (`\n`, `\u{1b}`, `\u{202e}`), a
//! backslash as `\\`, and bytes that are not UTF-8 as `\xff`. Only what is
//! shown changes: a file is uploaded under its real name.

use std::fmt::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// True for the characters that are escaped when shown.
pub fn needs_escape(c: char) -> bool {
    c == '\\' || asset_catalog_proto::misleads_when_shown(c)
}

fn write_escaped(f: &mut dyn Write, s: &str, backslash: bool) -> fmt::Result {
    let mut rest = s;
    while let Some(at) = rest.find(|c| needs_escape(c) && (backslash || c != '\\')) {
        f.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    f.write_str(rest)
}

/// Text (a name, a server's message) as it may be shown.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a>(pub &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, true)
    }
}

/// Text escaped when it was made (an error message built from escaped
/// parts), shown again: a control or bidi character left in it is escaped,
/// backslashes stay as they are.
#[derive(Debug, Clone, Copy)]
pub struct Made<'a>(pub &'a str);

impl fmt::Display for Made<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

/// A path as it may be shown (bytes that are not UTF-8 as `\xNN`).
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.as_os_str().as_bytes().utf8_chunks() {
            write_escaped(f, chunk.valid(), true)?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// `path`, escaped for showing.
pub fn path(path: &Path) -> Shown<'_> {
    Shown(path)
}

/// `text`, escaped for showing.
pub fn text(text: &str) -> Text<'_> {
    Text(text)
}

/// `text` escaped, as an owned string.
pub fn escape(text: &str) -> String {
    Text(text).to_string()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let cases = [
            ("plain name.jpg", "plain name.jpg"),
            ("two\nlines\r\n", "two\\nlines\\r\\n"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("invoice\u{202e}fdp.exe", "invoice\\u{202e}fdp.exe"),
            (
                "\u{2066}iso\u{2069} \u{200f}",
                "\\u{2066}iso\\u{2069} \\u{200f}",
            ),
            (
                "nul\0 del\u{7f} c1\u{85} tab\t",
                "nul\\u{0} del\\u{7f} c1\\u{85} tab\\t",
            ),
            ("back\\slash", "back\\\\slash"),
            ("ünïcødé 写真 🙂", "ünïcødé 写真 🙂"),
        ];
        for (raw, want) in cases {
            assert_eq!(text(raw).to_string(), want, "{raw:?}");
            assert_eq!(escape(raw), want);
        }
        let made = format!("no such file: {}", text("a\\b\nc"));
        assert_eq!(Made(&made).to_string(), made, "escaped once, not twice");
        assert_eq!(Made("raw\u{202e}\n").to_string(), "raw\\u{202e}\\n");
    }

    #[test]
    fn paths_show_bytes_that_are_not_utf8_as_hex() {
        let p = Path::new(OsStr::from_bytes(b"/w/caf\xe9 \xff\n\xe2\x80\xae.bin"));
        assert_eq!(path(p).to_string(), "/w/caf\\xe9 \\xff\\n\\u{202e}.bin");
        let shown = path(Path::new("/w/\u{1b}]0;title\u{7}")).to_string();
        assert!(!shown.chars().any(needs_escape_but_backslash), "{shown}");
    }

    fn needs_escape_but_backslash(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }
}
