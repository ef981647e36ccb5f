//! Which characters of a name or path must not be shown as they are: both
//! daemons escape or replace them wherever they show user text (logs,
//! `status`, `Content-Disposition`, token names).

/// Control characters (C0, DEL, C1) and the bidirectional formatting
/// characters that make text read as something it is not (U+202A–U+202E,
/// U+2066–U+2069, and the marks U+061C, U+200E, U+200F): U+202E shows
/// `photo\u{202e}gpj.exe` as `photoexe.jpg`.
pub fn misleads_when_shown(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_marks_mislead_letters_do_not() {
        for c in [
            '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{202e}', '\u{2067}', '\u{200f}',
        ] {
            assert!(misleads_when_shown(c), "{c:?}");
        }
        for c in ['a', 'é', ' ', '\\', '\u{2013}'] {
            assert!(!misleads_when_shown(c), "{c:?}");
        }
    }
}
